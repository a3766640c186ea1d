// Cross-language state machines, Node side: runs steps against a machine hosted elsewhere (by
// the C host in test_state_machines.py) and prints one JSON array with each step's outcome.
//
//   node sm_driver.js <cluster_id> <addr,addr,...> <machine> '<steps JSON>'
//
// Steps: {"update": "cmd"}, {"batch": ["cmd", ...]} (one update_batch), {"query": "q"} (STRICT).
// Outcomes: {"ok": "result"} or {"error": "<code>", "message": "..."}; a batch gives an array of
// them, one per command.
'use strict';
const { Client } = require('../../bindings/node');

const outcome = (v) => (v instanceof Error ? { error: v.code, message: v.message } : { ok: v.toString() });

async function run(sm, step) {
  try {
    if ('update' in step) return outcome(await sm.update(Buffer.from(step.update), { response: 'REPLICATION' }));
    if ('batch' in step) {
      const results = await sm.updateBatch(step.batch.map((c) => Buffer.from(c)), { response: 'REPLICATION' });
      return results.map(outcome);
    }
    if ('query' in step) return outcome(await sm.query(Buffer.from(step.query), { consistency: 'STRICT' }));
  } catch (e) {
    if (typeof e.code !== 'string') throw e;
    return outcome(e);
  }
  throw new Error(`unknown step ${JSON.stringify(step)}`);
}

async function main() {
  const [clusterId, addrList, machine, steps] = process.argv.slice(2);
  const client = await Client.connect(addrList.split(','), { clusterId: Number(clusterId) });
  const sm = client.stateMachine(machine);
  const out = [];
  for (const step of JSON.parse(steps)) out.push(await run(sm, step));
  await client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
