// atom-loader's module hooks for ES-module skills (registered by atom_host.js with
// module.register the first time an ES-module skill is loaded; they run on Node's hooks thread).
//
// A version of an ES-module skill is imported as `entry?atom-version=<module name>&atom-root=<folder>`.
// Every file: URL that a module of that version imports, statically or with import(), and that
// lies inside the skill folder (not under node_modules) gets the same query, so each version
// reads its own fresh copy of its helpers instead of the copy Node cached for an older version.
// Packages, builtins and files outside the folder resolve as usual and are shared.
//
// Bare package names that Node's ES resolver cannot find (it ignores NODE_PATH) are looked up
// in the environment's node_modules (NODE_PATH), as require() does for CommonJS skills.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

const nodePaths = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);

function isBare(specifier) {
  return !/^(?:[a-z][a-z0-9+.-]*:|\/|\.\.?(?:\/|$))/i.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  let result;
  try {
    result = await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier) || nodePaths.length === 0) throw error;
    let found;
    for (const directory of nodePaths) {
      try {
        // Resolving from a file beside node_modules finds node_modules/<name>.
        found = await nextResolve(specifier, { ...context, parentURL: pathToFileURL(path.join(directory, '..', 'atom-skill.mjs')).href });
        break;
      } catch {
        // next directory
      }
    }
    if (!found) throw error;
    result = found;
  }
  const parent = context.parentURL ? new URL(context.parentURL) : null;
  const version = parent?.searchParams.get('atom-version');
  if (!version || !result.url.startsWith('file:')) return result;
  const root = parent.searchParams.get('atom-root');
  const child = new URL(result.url);
  if (!root || !child.pathname.startsWith(root + '/') || child.pathname.includes('/node_modules/')) return result;
  child.search = parent.search;
  return { ...result, url: child.href };
}
