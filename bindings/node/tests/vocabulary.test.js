// One vocabulary: the names of roles, levels and error codes are the core's (the same lists
// are asserted by the C, Python and CLI tests), and the bounds are stated.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { vocabulary, ResponseConfig, QueryConsistency, ErrorCode, Standing } = require('..');

const ROLES = ['LEADER', 'FOLLOWER', 'PRE_CANDIDATE', 'CANDIDATE', 'OBSERVER'];
const RESPONSE_CONFIGS = ['ONE_WAY', 'RECEIVE', 'PERSISTENCE', 'REPLICATION', 'ALL'];
const QUERY_CONSISTENCIES = ['STRICT', 'SEQUENTIAL', 'NONE'];

test('the names are the core names', () => {
  const v = vocabulary();
  assert.deepStrictEqual(v.roles, ROLES);
  assert.deepStrictEqual(v.responseConfigs, RESPONSE_CONFIGS);
  assert.deepStrictEqual(Object.values(ResponseConfig), RESPONSE_CONFIGS);
  assert.deepStrictEqual(v.queryConsistencies, QUERY_CONSISTENCIES);
  assert.deepStrictEqual(Object.values(QueryConsistency), QUERY_CONSISTENCIES);
  assert.deepStrictEqual([...v.errorCodes].sort(), Object.values(ErrorCode).sort());
});

test('the standings are named as in C and Python', () => {
  assert.deepStrictEqual(Object.values(Standing), ['JOINING', 'MEMBER', 'REMOVED', 'OBSERVER']);
});

test('the bounds are stated', () => {
  const { limits } = require('..');
  assert.deepStrictEqual(limits(), {
    maxAppendEntries: 4096,
    maxEntryBytes: 4 * 1024 * 1024,
    maxAppendBytes: 8 * 1024 * 1024,
    maxGetEntries: 4096,
    maxPartitions: 4096,
    maxKeyBytes: 4096,
    maxValueBytes: 1024 * 1024,
    maxVoters: 64,
    maxAdminTimeoutMs: 600000,
  });
});
