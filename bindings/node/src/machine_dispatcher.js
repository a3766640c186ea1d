// The dispatcher of one user state machine hosted by `Server.start` (evaluated once per start
// by src/user_machine.rs, which embeds this file): `dispatcher(name, machine)` is a function
// the native side calls on the JS thread, or a string saying why `machine` is unusable.
'use strict';
/**
 * The dispatcher of one hosted state machine: the native side calls
 * it on the JS thread with `{ op, data, index, term, timestampMs }` (or, for `applyBatch`,
 * `{ op, batch: [{ data, index, term, timestampMs }, …] }`, answered `{ results: [reply, …] }`)
 * and waits for its reply.
 * It never throws: `{ ok }` (a result or chunk), `{ done: true }` (no more chunks),
 * `{ rejected }` (the machine threw an error whose `code` is `'REJECTED'`) or `{ failed }`
 * (any other throw, or a result that is not a `Buffer`: the fail-stop path).
 */
(function dispatcher(name, machine) {
  for (const m of ['apply', 'query', 'snapshot', 'restore']) {
    if (machine === null || typeof machine !== 'object' || typeof machine[m] !== 'function') {
      return `options.stateMachines.${name} must be an object with a ${m}() method`;
    }
  }
  let chunks = null;
  const buffer = (what, v) => {
    if (Buffer.isBuffer(v)) return { ok: v };
    const kind = v === null ? 'null' : (v && typeof v.then === 'function' ? 'a Promise' : typeof v);
    return { failed: `${what} returned ${kind}, not a Buffer` };
  };
  const thrown = (op, error) => {
    if (error !== null && typeof error === 'object' && error.code === 'REJECTED') {
      return { rejected: String(error.message) };
    }
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { failed: `${op} threw ${what}` };
  };
  const applyOne = (c) => {
    try {
      return buffer('apply', machine.apply(
        { index: c.index, term: c.term, timestampMs: c.timestampMs }, c.data));
    } catch (error) {
      return thrown('apply', error);
    }
  };
  return (call) => {
    try {
      switch (call.op) {
        case 'apply':
          return applyOne(call);
        case 'applyBatch': {
          // One reply per command, in order; a failure ends the batch (fail-stop).
          const results = [];
          for (const c of call.batch) {
            const r = applyOne(c);
            results.push(r);
            if (r.failed !== undefined) break;
          }
          return { results };
        }
        case 'query':
          return buffer('query', machine.query(call.data));
        case 'snapshot': {
          const s = machine.snapshot();
          const list = Buffer.isBuffer(s) ? [s] : s;
          if (list === null || typeof list !== 'object' || typeof list[Symbol.iterator] !== 'function') {
            return { failed: 'snapshot returned neither a Buffer nor an iterable of Buffers' };
          }
          chunks = list[Symbol.iterator]();
          return {};
        }
        case 'snapshotNext': {
          const n = chunks.next();
          if (n.done) {
            chunks = null;
            return { done: true };
          }
          return buffer('a snapshot chunk', n.value);
        }
        case 'restoreBegin':
          if (typeof machine.restoreBegin === 'function') machine.restoreBegin();
          return {};
        case 'restore':
          machine.restore(call.data);
          return {};
        case 'restoreEnd':
          if (typeof machine.restoreEnd === 'function') machine.restoreEnd();
          return {};
        default:
          return { failed: `unknown call ${call.op}` };
      }
    } catch (error) {
      if (call.op.startsWith('snapshot')) chunks = null;
      return thrown(call.op, error);
    }
  };
})
