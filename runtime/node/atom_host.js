'use strict';
// atom-loader's Node skill host: one warm process per environment.
//
// Started by the loader as `node [--max-old-space-size=MB] atom_host.js` with the protocol on
// fds 3 (requests in) and 4 (responses out); fd 1 and 2 are the host's own log, and what a skill
// prints through `console` while it runs is captured and returned with its result.
//
// Frames: u32 little-endian length, then the body: u8 op, u32 request id, then fields, each a
// u32 length and UTF-8 bytes (docs/LOADER.md, "Host protocol"). Requests are served one at a
// time, in order.
//
// Each skill version gets its own module object. CommonJS: a fresh `Module` compiled from the
// entry file; before a new version is loaded, the skill folder's files are dropped from require's
// cache so its helpers are read again. ES modules: the version is imported through a symbolic
// link of its own to the skill folder (`$TMPDIR/atom-esm/<module name>` -> folder) and the host
// runs with --preserve-symlinks, so the entry and every file it imports by a relative path
// (statically or with import()) have URLs unique to the version and are read afresh, while
// packages and builtins are shared. (Module hooks could do the same by rewriting URLs, but Node
// 20 runs them on a thread of their own: measured about 10x slower per import, and a hooks
// thread to start; they are registered only for what they alone can do, see atom_esm_hooks.mjs.)
//
// Node never frees an ES module it has imported (its module map has no eviction), so every ES
// version stays in memory. After ESM_VERSIONS_PER_HOST of them the host says so in its load
// reply (a second field, "retire"), and the loader replaces it once it is idle: memory stays
// bounded however often a skill is reloaded.

const fs = require('fs');
const path = require('path');
const Module = require('module');
const { pathToFileURL } = require('url');

const IN_FD = 3;
const OUT_FD = 4;
const MAX_LOGS = 64 * 1024;
// The RPC payload limit: a larger output is refused here with its size (the loader answers
// RESOURCE_EXHAUSTED) instead of a frame the loader must kill the host for.
const MAX_OUTPUT = 4 * 1024 * 1024;
// A failure's name, message and stack are each cut at this many characters (an error may carry
// megabytes of text).
const MAX_FAILURE_TEXT = 64 * 1024;

const skills = new Map();
const ESM_VERSIONS_PER_HOST = Number(process.env.ATOM_ESM_VERSIONS_PER_HOST || 64);
let esmVersions = 0;
let hooksRegistered = false;

const esmLinks = path.join(process.env.TMPDIR || require('os').tmpdir(), 'atom-esm');

/** Node's ES resolver ignores NODE_PATH: with an environment, hooks look packages up there. */
function registerHooks() {
  if (hooksRegistered || !process.env.NODE_PATH) return;
  Module.register(pathToFileURL(path.join(__dirname, 'atom_esm_hooks.mjs')).href);
  hooksRegistered = true;
}

function unlinkVersion(moduleName) {
  try {
    fs.unlinkSync(path.join(esmLinks, moduleName));
  } catch {
    // not an ES-module version, or already gone
  }
}

function send(op, requestId, ...fields) {
  const buffers = fields.map((field) => (Buffer.isBuffer(field) ? field : Buffer.from(String(field), 'utf8')));
  const size = 5 + buffers.reduce((sum, b) => sum + 4 + b.length, 0);
  const frame = Buffer.allocUnsafe(4 + size);
  frame.writeUInt32LE(size, 0);
  frame.write(op, 4, 'latin1');
  frame.writeUInt32LE(requestId, 5);
  let offset = 9;
  for (const b of buffers) {
    frame.writeUInt32LE(b.length, offset);
    b.copy(frame, offset + 4);
    offset += 4 + b.length;
  }
  let written = 0;
  while (written < frame.length) {
    try {
      written += fs.writeSync(OUT_FD, frame, written);
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
    }
  }
}

function parse(body) {
  const op = String.fromCharCode(body[0]);
  const requestId = body.readUInt32LE(1);
  const fields = [];
  let offset = 5;
  while (offset < body.length) {
    const size = body.readUInt32LE(offset);
    fields.push(body.subarray(offset + 4, offset + 4 + size));
    offset += 4 + size;
  }
  return { op, requestId, fields };
}

/** Collects what the skill prints through console during one call. */
function capture() {
  const parts = [];
  let size = 0;
  const saved = {};
  const names = ['log', 'info', 'warn', 'error', 'debug', 'trace'];
  for (const name of names) {
    saved[name] = console[name];
    console[name] = (...args) => {
      const line = args.map((a) => (typeof a === 'string' ? a : require('util').inspect(a))).join(' ') + '\n';
      if (size < MAX_LOGS) parts.push(line.slice(0, MAX_LOGS - size));
      size += line.length;
    };
  }
  return {
    restore() {
      for (const name of names) console[name] = saved[name];
    },
    text() {
      return parts.join('') + (size > MAX_LOGS ? '\n[logs truncated]\n' : '');
    },
  };
}

function failure(error) {
  if (error instanceof Error) return [clip(String(error.name || 'Error')), clip(String(error.message)), clip(String(error.stack || ''))];
  return ['Error', clip(String(error)), ''];
}

function clip(text) {
  return text.length <= MAX_FAILURE_TEXT ? text : text.slice(0, MAX_FAILURE_TEXT) + '\n[truncated]';
}

function isModule(entry) {
  if (entry.endsWith('.mjs')) return true;
  if (entry.endsWith('.cjs')) return false;
  // The nearest package.json decides, like Node itself.
  for (let dir = path.dirname(entry); ; dir = path.dirname(dir)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type === 'module';
    } catch (error) {
      if (error.code !== 'ENOENT') return false;
    }
    if (path.dirname(dir) === dir) return false;
  }
}

async function load(requestId, fields) {
  const [moduleName, directory, entry, functionName] = fields.slice(0, 4).map((f) => f.toString('utf8'));
  const logs = capture();
  try {
    for (const key of Object.keys(require.cache)) {
      if (key.startsWith(directory + path.sep)) delete require.cache[key];
    }
    let exports;
    if (isModule(entry)) {
      registerHooks();
      fs.mkdirSync(esmLinks, { recursive: true });
      const link = path.join(esmLinks, moduleName);
      unlinkVersion(moduleName);
      fs.symlinkSync(directory, link, 'dir');
      esmVersions += 1;
      exports = await import(pathToFileURL(path.join(link, path.relative(directory, entry))).href);
    } else {
      const module = new Module(entry, null);
      module.filename = entry;
      module.paths = Module._nodeModulePaths(directory);
      module._compile(fs.readFileSync(entry, 'utf8'), entry);
      module.loaded = true;
      exports = module.exports;
    }
    const target = exports[functionName] ?? (exports.default && exports.default[functionName]);
    if (typeof target !== 'function') {
      throw new TypeError(`${path.basename(entry)} exports no function ${functionName}(inputs)`);
    }
    skills.set(moduleName, target);
    logs.restore();
    send('O', requestId, logs.text(), esmVersions >= ESM_VERSIONS_PER_HOST ? 'retire' : '');
  } catch (error) {
    logs.restore();
    unlinkVersion(moduleName);
    const kind = error instanceof RangeError && /memory/i.test(error.message) ? 'memory' : 'load';
    send('F', requestId, ...failure(error), kind, logs.text(), esmVersions >= ESM_VERSIONS_PER_HOST ? 'retire' : '');
  }
}

async function execute(requestId, fields) {
  const moduleName = fields[0].toString('utf8');
  const target = skills.get(moduleName);
  if (!target) {
    send('F', requestId, 'NotLoaded', `${moduleName} is not loaded in this host`, '', 'missing', '');
    return;
  }
  let inputs = {};
  if (fields[1].length > 0) {
    try {
      inputs = JSON.parse(fields[1].toString('utf8'));
    } catch (error) {
      send('F', requestId, 'SyntaxError', `inputs_json is not valid JSON: ${error.message}`, '', 'input', '');
      return;
    }
  }
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    send('F', requestId, 'TypeError', 'inputs_json must be a JSON object', '', 'input', '');
    return;
  }
  const logs = capture();
  try {
    const result = await target(inputs);
    if (result === null || typeof result !== 'object' || Array.isArray(result)) {
      throw new TypeError(`${target.name || 'execute'} returned ${Array.isArray(result) ? 'an array' : typeof result}; a skill returns an object`);
    }
    const outputs = JSON.stringify(result);
    logs.restore();
    const size = Buffer.byteLength(outputs, 'utf8');
    if (size > MAX_OUTPUT) {
      send('F', requestId, 'OutputTooLarge', `the output is ${size} bytes of JSON; at most ${MAX_OUTPUT}`, '', 'output-size', logs.text());
      return;
    }
    send('O', requestId, outputs, logs.text());
  } catch (error) {
    logs.restore();
    send('F', requestId, ...failure(error), 'skill', logs.text());
  }
}

let pending = Buffer.alloc(0);
let queue = Promise.resolve();

function serve(op, requestId, fields) {
  switch (op) {
    case 'X':
      return execute(requestId, fields);
    case 'L':
      return load(requestId, fields);
    case 'U':
      for (const field of fields) {
        skills.delete(field.toString('utf8'));
        unlinkVersion(field.toString('utf8'));
      }
      return undefined;
    case 'P':
      send('O', requestId);
      return undefined;
    default:
      send('F', requestId, 'ProtocolError', `unknown op ${op}`, '', 'protocol', '');
      return undefined;
  }
}

send('R', 0, String(process.pid), process.version);
const input = fs.createReadStream(null, { fd: IN_FD, highWaterMark: 1 << 16 });
input.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= 4) {
    const size = pending.readUInt32LE(0);
    if (pending.length < 4 + size) break;
    const { op, requestId, fields } = parse(pending.subarray(4, 4 + size));
    pending = pending.subarray(4 + size);
    queue = queue.then(() => serve(op, requestId, fields));
  }
});
// The loader is gone (or closed our pipe): nothing left to serve.
input.on('end', () => process.exit(0));
input.on('error', () => process.exit(0));
