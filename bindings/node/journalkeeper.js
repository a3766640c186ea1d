// The package entry: the generated native loader (`index.js`) plus the only JS-side additions
// (types in `dts-header.d.ts`): `kv.events()`, an async iterator over a KV watch,
// `client.events()` / `server.events()`, cluster events as a callback subscription or an async
// iterator, and `for await` over the coordination change streams (`ElectionObserver`,
// `MembersWatch`).
'use strict';
const native = require('./index.js');

const TRANSIENT = new Set(['TIMEOUT', 'UNAVAILABLE']);

/**
 * An async iterator over a callback subscription: `subscribe(callback)` starts it and returns
 * (a Promise of) a handle with `close()`. Errors `TIMEOUT` / `UNAVAILABLE` are retried by the
 * subscription and not surfaced; `CLOSED` ends the iteration when `closedEnds` (the stream's
 * own end), any other error rejects `next()` and ends it. Leaving the loop (or `close()`)
 * closes the subscription. While a `next()` is pending it keeps the process alive, like any
 * pending I/O; the callback form never does.
 */
function iterate(subscribe, { closedEnds = false } = {}) {
  const queue = []; // { value } | { error } | { end }
  const waiters = []; // { resolve, reject }
  let handle = null;
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
    if (handle) handle.close();
    for (const w of waiters.splice(0)) w.resolve({ value: undefined, done: true });
    release();
  };
  const deliver = (item) => {
    if (done) return;
    if (item.error && TRANSIENT.has(item.error.code)) return;
    if (item.error && closedEnds && item.error.code === 'CLOSED') item = { end: true };
    const w = waiters.shift();
    if (!w) {
      queue.push(item);
    } else if (item.end) {
      finish();
      w.resolve({ value: undefined, done: true });
    } else if (item.error) {
      finish();
      w.reject(item.error);
    } else {
      w.resolve({ value: item.value, done: false });
    }
    release();
  };
  const started = (h) => {
    handle = h;
    if (done) h.close();
  };
  const failed = (error) => {
    const w = waiters.shift();
    finish();
    if (w) w.reject(error);
    else queue.push({ error });
  };

  try {
    Promise.resolve(subscribe((error, value) => deliver(error ? { error } : { value }))).then(started, failed);
  } catch (error) {
    failed(error);
  }

  return {
    next() {
      if (queue.length > 0) {
        const item = queue.shift();
        if (item.end) {
          finish();
          return Promise.resolve({ value: undefined, done: true });
        }
        if (item.error) {
          finish();
          return Promise.reject(item.error);
        }
        return Promise.resolve({ value: item.value, done: false });
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
}

/**
 * `for await (const event of client.kv.events(filter, fromIndex))`: the events of
 * `kv.watch()` as an async iterator. `TIMEOUT` / `UNAVAILABLE` are retried by the watch and
 * not surfaced; any other error rejects `next()` and ends the iteration. Leaving the loop (or
 * `close()`) closes the watch. While a `next()` is pending it keeps the process alive, like
 * any pending I/O; the callback form never does.
 */
native.Kv.prototype.events = function events(filter, fromIndex = 0) {
  return iterate((callback) => this.watch(filter, fromIndex, callback));
};

/** Whether the first argument of `events()` is its options (a plain object), not a callback. */
function isOptions(arg) {
  return arg !== null && typeof arg === 'object' && !Array.isArray(arg);
}

/**
 * Cluster events (leader, voters, the node's role, journal bounds; with
 * `{ stateMachines: true }` also each user state machine's `stateChanged`), starting with the
 * node's current state. Options go last: `events(callback, options)` or `events(options)`. `client.events(callback)`: a Promise of the subscription (`close()` ends it;
 * the callback never keeps the process alive). `client.events()`: an async iterator
 * (`for await`) that ends when it or the client is closed; any other error than the retried
 * `TIMEOUT` / `UNAVAILABLE` rejects `next()`.
 */
native.Client.prototype.events = function events(callback, options) {
  if (isOptions(callback)) [callback, options] = [undefined, callback];
  if (callback !== undefined) return this.subscribeEvents(callback, options);
  return iterate((cb) => this.subscribeEvents(cb, options), { closedEnds: true });
};

/**
 * This node's own events, starting with its current state; they end when the server stops.
 * `server.events(callback)`: the subscription (not a Promise; `close()` ends it; the callback
 * never keeps the process alive). `server.events()`: an async iterator (`for await`) that
 * ends when closed or when the server stops.
 */
native.Server.prototype.events = function events(callback, options) {
  if (isOptions(callback)) [callback, options] = [undefined, callback];
  if (callback !== undefined) return this.subscribeEvents(callback, options);
  return iterate((cb) => this.subscribeEvents(cb, options), { closedEnds: true });
};

/**
 * `for await (const change of stream)` over an `ElectionObserver` / `MembersWatch`: each
 * `next()` of the stream in turn; the iteration ends at `CLOSED` (the stream or its client was
 * closed), any other error rejects and ends it. Leaving the loop closes the stream. A pending
 * `next()` keeps the process alive, like any pending I/O.
 */
function changes() {
  const stream = this;
  return {
    async next() {
      try {
        return { value: await stream.next(), done: false };
      } catch (error) {
        stream.close();
        if (error.code === 'CLOSED') return { value: undefined, done: true };
        throw error;
      }
    },
    return() {
      stream.close();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
native.ElectionObserver.prototype[Symbol.asyncIterator] = changes;
native.MembersWatch.prototype[Symbol.asyncIterator] = changes;

module.exports = native;
