// Cross-language state machines, Node host (`make bench-machines`): one embedded node per TOML
// file given, each hosting the counter below as "counter" (`add N` → the new value in decimal;
// any query → the value; snapshot = the value in decimal). Prints `ready` once node 1 knows a
// leader, then serves until stdin closes.
//
//   node sm_host.js <node.toml>...
'use strict';
const fs = require('node:fs');
const { Server } = require('../../bindings/node');

class Counter {
  constructor() {
    this.value = 0n;
  }

  apply(ctx, command) {
    const text = command.toString();
    if (!text.startsWith('add ')) {
      const e = new Error('unknown command');
      e.code = 'REJECTED';
      throw e;
    }
    this.value += BigInt(text.slice(4));
    return Buffer.from(String(this.value));
  }

  query() {
    return Buffer.from(String(this.value));
  }

  snapshot() {
    return Buffer.from(String(this.value));
  }

  restoreBegin() {
    this.value = 0n;
  }

  restore(chunk) {
    this.value = BigInt(chunk.toString());
  }
}

async function main() {
  const servers = [];
  for (const file of process.argv.slice(2)) {
    servers.push(await Server.start(fs.readFileSync(file, 'utf8'), { stateMachines: { counter: new Counter() } }));
  }
  const deadline = Date.now() + 60000;
  while (servers[0].status().leader == null) {
    if (Date.now() > deadline) throw new Error('no leader after 60 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  process.stdout.write('ready\n');
  process.stdin.resume();
  await new Promise((r) => process.stdin.once('end', r));
  await Promise.all(servers.map((s) => s.close()));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
