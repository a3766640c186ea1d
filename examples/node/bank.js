// A replicated bank from Node.js: a JS state machine (the text protocol every binding's bank
// speaks: `deposit A N`, `transfer A B N`, queries `balance A` / `balances`) hosted by an
// embedded 3-node cluster. Deposits, transfers (a refused one rejects with code 'REJECTED'),
// the leader stopped mid-way, then every running node must hold the same balances and the
// total must be conserved; exits non-zero otherwise.
//
//   node examples/node/bank.js        (after `make node-test`, or `npm install ./bindings/node`)
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Server, Client } = require('../../bindings/node');

/** The bank. `apply` is deterministic: the state, the command and nothing else. */
class Bank {
  constructor() {
    this.accounts = new Map();
  }

  get(a) {
    return this.accounts.get(a) ?? 0n;
  }

  apply(ctx, command) {
    const [op, ...args] = command.toString().split(' ');
    if (op === 'deposit') {
      this.accounts.set(args[0], this.get(args[0]) + BigInt(args[1]));
      return Buffer.from(String(this.get(args[0])));
    }
    if (op === 'transfer') {
      const [a, b, n] = [args[0], args[1], BigInt(args[2])];
      if (this.get(a) < n) {
        // A deterministic refusal: every node refuses it the same way, nothing changes.
        const e = new Error(`${a} has ${this.get(a)}, short of ${n}`);
        e.code = 'REJECTED';
        throw e;
      }
      this.accounts.set(a, this.get(a) - n);
      this.accounts.set(b, this.get(b) + n);
      return Buffer.from(String(this.get(a)));
    }
    const e = new Error(`unknown command ${op}`);
    e.code = 'REJECTED';
    throw e;
  }

  balances() {
    return [...this.accounts.keys()].sort().map((a) => `${a}=${this.accounts.get(a)}\n`).join('');
  }

  query(q) {
    const [op, a] = q.toString().split(' ');
    return Buffer.from(op === 'balance' ? String(this.get(a)) : this.balances());
  }

  // Snapshot chunks: one `A=N` line each, pulled one at a time.
  * snapshot() {
    for (const line of this.balances().split('\n').filter(Boolean)) yield Buffer.from(line);
  }

  restoreBegin() {
    this.accounts = new Map();
  }

  restore(chunk) {
    const [a, n] = chunk.toString().split('=');
    this.accounts.set(a, BigInt(n));
  }
}

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const total = (text) => text.split('\n').filter(Boolean).reduce((s, l) => s + BigInt(l.split('=')[1]), 0n);

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jk-bank-'));
  const addrs = [];
  for (let i = 0; i < 3; i++) addrs.push(`127.0.0.1:${await freePort()}`);
  const peers = Object.fromEntries(addrs.map((a, i) => [String(i + 1), a]));
  const banks = addrs.map(() => new Bank());
  const servers = await Promise.all(addrs.map((listen, i) => Server.start(
    { nodeId: i + 1, listen, clusterId: 42, dataDir: path.join(dir, `n${i + 1}`), peers },
    { stateMachines: { bank: banks[i] } },
  )));
  const client = await Client.connect(addrs, { clusterId: 42 });
  const bank = client.stateMachine('bank');

  const names = ['alice', 'bob', 'carol'];
  for (const n of names) await bank.update(Buffer.from(`deposit ${n} 100`));
  try {
    await bank.update(Buffer.from('transfer alice bob 1000'));
    throw new Error('an overdraft was accepted');
  } catch (e) {
    if (e.code !== 'REJECTED') throw e;
    console.log('refused:', e.message);
  }

  const stopped = new Set();
  let refused = 0;
  for (let i = 0; i < 60; i++) {
    if (i === 30) {
      const leader = servers.findIndex((s) => s.status().role === 'LEADER');
      console.log(`stopping the leader, node ${leader + 1}`);
      stopped.add(leader);
      await servers[leader].close();
    }
    const cmd = `transfer ${names[i % 3]} ${names[(i + 1) % 3]} ${(i * 37) % 90}`;
    try {
      await bank.update(Buffer.from(cmd));
    } catch (e) {
      if (e.code !== 'REJECTED') throw e;
      refused += 1;
    }
  }

  const want = (await bank.query(Buffer.from('balances'))).toString();
  console.log(`balances (${refused} transfers refused):\n${want.trimEnd()}`);
  // Every running node applies the same log: wait (bounded) until each has applied it all.
  const deadline = Date.now() + 10000;
  const running = banks.filter((_, i) => !stopped.has(i));
  while (!running.every((b) => b.balances() === want) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  let ok = total(want) === 300n;
  for (const [i, b] of banks.entries()) {
    if (stopped.has(i)) continue;
    if (b.balances() !== want) {
      console.error(`node ${i + 1} holds other balances:\n${b.balances()}`);
      ok = false;
    }
  }
  await client.close();
  await Promise.all(servers.map((s) => s.close()));
  fs.rmSync(dir, { recursive: true, force: true });
  if (!ok) {
    console.error(`MISMATCH: total ${total(want)}, expected 300`);
    process.exit(1);
  }
  console.log('equal balances on every running node; total conserved: 300');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
