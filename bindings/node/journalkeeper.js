// The package entry: the generated native loader (`index.js`) plus the only JS-side addition,
// `kv.events()`, an async iterator over a KV watch (types in `dts-header.d.ts`).
'use strict';
const native = require('./index.js');

const TRANSIENT = new Set(['TIMEOUT', 'UNAVAILABLE']);

/**
 * `for await (const event of client.kv.events(filter, fromIndex))`: the events of
 * `kv.watch()` as an async iterator. `TIMEOUT` / `UNAVAILABLE` are retried by the watch and
 * not surfaced; any other error rejects `next()` and ends the iteration. Leaving the loop (or
 * `close()`) closes the watch. While a `next()` is pending it keeps the process alive, like
 * any pending I/O; the callback form never does.
 */
native.Kv.prototype.events = function events(filter, fromIndex = 0) {
  const queue = []; // { event } | { error }
  const waiters = []; // { resolve, reject }
  let watch = null;
  let done = false;
  let keepAlive = null;

  const hold = () => {
    if (!keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
  };
  const release = () => {
    if (keepAlive && waiters.length === 0) {
      clearInterval(keepAlive);
      keepAlive = null;
    }
  };
  const finish = () => {
    done = true;
    if (watch) watch.close();
    for (const w of waiters.splice(0)) w.resolve({ value: undefined, done: true });
    release();
  };
  const deliver = (item) => {
    if (done) return;
    if (item.error && TRANSIENT.has(item.error.code)) return;
    const w = waiters.shift();
    if (!w) {
      queue.push(item);
    } else if (item.error) {
      finish();
      w.reject(item.error);
    } else {
      w.resolve({ value: item.event, done: false });
    }
    release();
  };

  this.watch(filter, fromIndex, (error, event) => deliver(error ? { error } : { event })).then(
    (w) => {
      watch = w;
      if (done) w.close();
    },
    (error) => {
      const w = waiters.shift();
      finish();
      if (w) w.reject(error);
      else queue.push({ error });
    },
  );

  return {
    next() {
      if (queue.length > 0) {
        const item = queue.shift();
        if (item.error) {
          finish();
          return Promise.reject(item.error);
        }
        return Promise.resolve({ value: item.event, done: false });
      }
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => {
        waiters.push({ resolve, reject });
        hold();
      });
    },
    return() {
      finish();
      return Promise.resolve({ value: undefined, done: true });
    },
    close() {
      finish();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
};

module.exports = native;
