// Cross-language test, Node side: connects to a cluster started elsewhere (by the Python test).
//
//   node writer.js write <cluster_id> <addr,addr,...> <partition> <n> <key> <value>
//     appends N entries ("node-<i>", one call each) and sets a KV key; prints
//     {"lang":"node","partition":2,"indices":[...],"payloads":[...],"kv_key":..,"kv_value":..}
//   node writer.js read <cluster_id> <addr,addr,...> <partition> <index> <n>
//     prints the N entries from <index> on: [{"index":..,"payload":"..."},...]
'use strict';
const { Client } = require('../../bindings/node');

async function main() {
  const [mode, clusterId, addrList, partition, ...rest] = process.argv.slice(2);
  const client = await Client.connect(addrList.split(','), { clusterId: Number(clusterId) });
  const p = Number(partition);
  let out;
  if (mode === 'write') {
    const [n, key, value] = rest;
    const indices = [];
    const payloads = [];
    for (let i = 0; i < Number(n); i++) {
      const payload = `node-${i}`;
      const index = await client.journal.append(p, [Buffer.from(payload)], { response: 'REPLICATION' });
      if (typeof index !== 'number') throw new Error(`REPLICATION append returned ${index}`);
      indices.push(index);
      payloads.push(payload);
    }
    await client.kv.set(key, Buffer.from(value));
    out = { lang: 'node', partition: p, indices, payloads, kv_key: key, kv_value: value };
  } else if (mode === 'read') {
    const [index, n] = rest;
    const entries = await client.journal.get(p, Number(index), Number(n), { consistency: 'STRICT' });
    out = entries.map((e) => ({ partition: e.partition, index: e.index, payload: e.payload.toString() }));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  await client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
