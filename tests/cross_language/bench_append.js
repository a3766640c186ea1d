// Node side of `make bench-bindings`: one caller doing sequential batch appends (REPLICATION)
// for a fixed time against a running cluster; prints one JSON object.
//
//   node bench_append.js <cluster_id> <addr,addr,...> <partition> <batch> <size> <seconds>
'use strict';
const { Client } = require('../../bindings/node');

async function main() {
  const [clusterId, addrs, partition, batch, size, seconds] = process.argv.slice(2);
  const n = Number(batch);
  const nbytes = Number(size);
  const client = await Client.connect(addrs.split(','), { clusterId: Number(clusterId) });
  await client.journal.maxIndices(); // find the leader before the clock starts
  let calls = 0;
  let seq = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(Number(seconds) * 1e9));
  while (process.hrtime.bigint() < deadline) {
    const entries = [];
    for (let i = 0; i < n; i++) {
      const b = Buffer.alloc(nbytes, 0x5a);
      b.writeBigUInt64LE(BigInt(seq++), 0);
      entries.push(b);
    }
    await client.journal.append(Number(partition), entries, { response: 'REPLICATION' });
    calls++;
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  await client.close();
  console.log(JSON.stringify({
    lang: 'node', batch: n, payload_bytes: nbytes, calls, records: calls * n,
    seconds: Math.round(elapsed * 100) / 100, records_per_s: Math.round((calls * n) / elapsed),
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
