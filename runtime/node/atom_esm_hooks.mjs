// atom-loader's module hooks for ES-module skills with packages (registered by atom_host.js
// with module.register the first time an ES-module skill loads in a host that has an
// environment; they run on Node's hooks thread).
//
// Node's ES resolver ignores NODE_PATH, where the installer's environment puts a skill's
// packages. A bare package name it cannot find is looked up in NODE_PATH's folders, as
// require() does for CommonJS skills. Everything else resolves as usual.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

const nodePaths = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);

function isBare(specifier) {
  return !/^(?:[a-z][a-z0-9+.-]*:|\/|\.\.?(?:\/|$)|#)/i.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier) || nodePaths.length === 0) throw error;
    for (const directory of nodePaths) {
      try {
        // Resolving from a file beside node_modules finds node_modules/<name>.
        return await nextResolve(specifier, { ...context, parentURL: pathToFileURL(path.join(directory, '..', 'atom-skill.mjs')).href });
      } catch {
        // the next folder
      }
    }
    throw error;
  }
}
