// The built-in SQL database through `client.sql()` on a 3-node embedded cluster: a schema and
// inserts, a batch failing at its second statement that changes nothing, every value type
// round-tripping (integers as numbers when safe, else bigints), reads at each consistency
// level, non-deterministic SQL refused, the leader's timestamp parameter, argument checks.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startCluster, connect, eventually } = require('./support.js');

test('client.sql(): execute and query on a 3-node cluster', async (t) => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  const sql = client.sql();
  t.after(async () => {
    await client.close();
    await cluster.close();
  });

  await t.test('a schema, inserts and the leader timestamp', async () => {
    let r = await sql.execute('CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, qty INTEGER, at INTEGER)');
    assert.deepStrictEqual(r, { rowsAffected: 0, lastInsertId: 0 });
    const before = Date.now();
    r = await sql.execute([
      { sql: 'INSERT INTO item (name, qty, at) VALUES (?1, ?2, :jk_timestamp_ms)', params: ['apple', 3] },
      { sql: 'INSERT INTO item (name, qty, at) VALUES (?, ?, :jk_timestamp_ms)', params: ['pear', 5] },
      'UPDATE item SET qty = qty + 1',
    ]);
    const after = Date.now();
    assert.deepStrictEqual(r, { rowsAffected: 4, lastInsertId: 2 });
    const answer = await sql.query('SELECT name, qty, at FROM item ORDER BY id');
    assert.deepStrictEqual(answer.columns, ['name', 'qty', 'at']);
    assert.deepStrictEqual(answer.rows.map((row) => row.slice(0, 2)), [['apple', 4], ['pear', 6]]);
    const [at, other] = answer.rows.map((row) => row[2]);
    assert.strictEqual(at, other); // one entry, one leader time
    assert.ok(typeof at === 'number' && at >= before - 1000 && at <= after + 1000, `${at}`);
    await assert.rejects(sql.query('SELECT :jk_timestamp_ms'),
      { code: 'REJECTED', message: /:jk_timestamp_ms is only known in execute/ });
  });

  await t.test('a batch failing at statement 2 changes nothing', async () => {
    await sql.execute([
      'CREATE TABLE acct (name TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))',
      { sql: 'INSERT INTO acct VALUES (?1, ?2)', params: ['alice', 10] },
    ]);
    const e = await sql.execute([
      { sql: 'INSERT INTO acct VALUES (?1, ?2)', params: ['bob', 5] },
      "UPDATE acct SET balance = balance - 50 WHERE name = 'alice'",
      'DELETE FROM acct',
    ]).then(() => assert.fail('the batch applied'), (err) => err);
    assert.strictEqual(e.code, 'REJECTED');
    assert.ok(e.message.startsWith('statement 2 ("UPDATE acct SET balance = balance - 50 WHERE name = \'alice\'"): '), e.message);
    assert.match(e.message, /CHECK constraint failed/);
    assert.deepStrictEqual((await sql.query('SELECT name, balance FROM acct')).rows, [['alice', 10]]);
  });

  await t.test('every value type round-trips; integers are numbers when safe, else bigints', async () => {
    await sql.execute('CREATE TABLE vals (id INTEGER PRIMARY KEY, v)');
    const params = [null, 0, -7, Number.MAX_SAFE_INTEGER, 2n ** 63n - 1n, -(2n ** 63n), 12n, true, 1.5, -0.25, 1e300,
      '', 'héllo ✓ \u0000 nul', Buffer.alloc(0), Buffer.from([0, 1, 0xfe, 0xff])];
    await sql.execute(params.map((v) => ({ sql: 'INSERT INTO vals (v) VALUES (?1)', params: [v] })));
    const expected = [null, 0, -7, Number.MAX_SAFE_INTEGER, 2n ** 63n - 1n, -(2n ** 63n), 12, 1, 1.5, -0.25, 1e300,
      '', 'héllo ✓ \u0000 nul', Buffer.alloc(0), Buffer.from([0, 1, 0xfe, 0xff])];
    const { rows } = await sql.query('SELECT v FROM vals ORDER BY id');
    assert.deepStrictEqual(rows.map((row) => row[0]), expected);
    assert.ok(Buffer.isBuffer(rows[13][0]) && Buffer.isBuffer(rows[14][0]));
    // Straight back as query parameters; typeof() agrees (a non-integral number is REAL).
    const echo = await sql.query('SELECT ?1, ?2, ?3, ?4, ?5, typeof(?1), typeof(?2), typeof(?3), typeof(?4), typeof(?5)',
      [null, 7, 2.25, 't', Buffer.from('b')]);
    assert.deepStrictEqual(echo.rows, [[null, 7, 2.25, 't', Buffer.from('b'), 'null', 'integer', 'real', 'text', 'blob']]);
    assert.strictEqual(echo.columns.length, 10);
    // lastInsertId follows the same rule.
    await sql.execute('CREATE TABLE big (id INTEGER PRIMARY KEY)');
    const r = await sql.execute('INSERT INTO big VALUES (?1)', [2n ** 62n]);
    assert.deepStrictEqual(r, { rowsAffected: 1, lastInsertId: 2n ** 62n });
  });

  await t.test('reads at each consistency level see a REPLICATION execute', async () => {
    await sql.execute(['CREATE TABLE levels (k TEXT PRIMARY KEY, v INTEGER)', "INSERT INTO levels VALUES ('a', 1)"]);
    await sql.execute("UPDATE levels SET v = ?1 WHERE k = 'a'", [2]);
    const select = "SELECT v FROM levels WHERE k = 'a'";
    assert.deepStrictEqual((await sql.query(select, [], { consistency: 'STRICT' })).rows, [[2]]);
    assert.deepStrictEqual((await sql.query(select, null, { consistency: 'SEQUENTIAL' })).rows, [[2]]);
    // NONE reads whichever node answers, which may lag: each node catches up.
    for (const addr of cluster.addrs) {
      const one = await connect([addr]);
      try {
        await eventually(`${addr} serving the update at NONE`, async () => {
          try {
            const { rows } = await one.sql().query(select, undefined, { consistency: 'NONE' });
            return rows.length === 1 && rows[0][0] === 2;
          } catch (e) {
            if (e.code === 'REJECTED') return false; // no such table on this node yet
            throw e;
          }
        });
      } finally {
        await one.close();
      }
    }
  });

  await t.test('non-deterministic SQL is refused, naming the function', async () => {
    await sql.execute('CREATE TABLE rand (x)');
    await assert.rejects(sql.execute('INSERT INTO rand VALUES (random())'),
      { code: 'REJECTED', message: /^statement 1 \("INSERT INTO rand VALUES \(random\(\)\)"\): random\(\) is refused/ });
    await assert.rejects(sql.query("SELECT datetime('now')"), { code: 'REJECTED', message: /datetime\(\) is refused/ });
    assert.deepStrictEqual((await sql.query('SELECT count(*) AS n FROM rand')).rows, [[0]]);
  });

  await t.test('bad arguments reject with INVALID_ARGUMENT naming them', async () => {
    const invalid = (message) => ({ code: 'INVALID_ARGUMENT', message });
    await assert.rejects(sql.query('SELECT ?1', [2n ** 63n]), invalid(/params\[0\] is outside the 64-bit/));
    await assert.rejects(sql.query('SELECT ?1', [{}]),
      invalid(/params\[0\] must be null, a boolean, a number, a bigint, a string or a Buffer, got object/));
    await assert.rejects(sql.query('SELECT ?1', [undefined]), invalid(/params\[0\] must be .*, got undefined/));
    await assert.rejects(sql.query('SELECT 1', 'x'), invalid(/params must be an array of SQL values, got string/));
    await assert.rejects(sql.query(42), invalid(/sql must be a string, got number/));
    await assert.rejects(sql.query('SELECT 1', [], { consistency: 'LINEARIZABLE' }), invalid(/options/));
    await assert.rejects(sql.execute(['SELECT 1', 42]), invalid(/statements\[1\] must be a string or a \{ sql, params \} object/));
    await assert.rejects(sql.execute([{ params: [] }]), invalid(/statements\[0\]\.sql must be a string, got undefined/));
    await assert.rejects(sql.execute([{ sql: 'SELECT ?1', params: 1 }]), invalid(/statements\[0\]\.params must be an array/));
    await assert.rejects(sql.execute(['SELECT 1'], [1]), invalid(/params goes with one SQL string/));
    await assert.rejects(sql.execute([]), invalid(/1..=1024 statements, not 0/));
    await assert.rejects(sql.query('SELECT ?1, ?2', [1]),
      { code: 'REJECTED', message: /the statement has 2 parameters but 1 were given/ });
    await assert.rejects(sql.query('DELETE FROM vals'), { code: 'REJECTED', message: /a query must not write: use execute/ });
  });
});
