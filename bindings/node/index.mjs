// The ESM entry (`import { Server, Client } from 'journalkeeper'`): the same module as the
// CommonJS entry `journalkeeper.js`, whose `module.exports` Node cannot analyse for named
// exports. It loads that entry (which adds `kv.events()`, `client.events()` and
// `server.events()`), re-exports the generated loader's named exports (statically visible to
// Node's CommonJS analysis) and the whole module as default.
import './journalkeeper.js';
export * from './index.js';
export { default } from './journalkeeper.js';
