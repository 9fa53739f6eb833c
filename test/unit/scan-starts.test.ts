/** How far lease scans skip into an endpoint's queue: what a scan passed, until what can change it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SCAN_SKIP_MS, ScanStarts } from '../../src/store/scan-starts.js';

const T = 1_000_000;

test('scan starts: a skip holds until the earliest retry it passed, at most SCAN_SKIP_MS, and is gone after', () => {
  const s = new ScanStarts();
  assert.equal(s.from('e', T), 0, 'nothing known: from the start');
  s.passed('e', T, 0, 40, T + 300);
  assert.equal(s.from('e', T + 299), 40);
  assert.equal(s.from('e', T + 300), 0, 'the retry falls due: from the start again');
  s.passed('e', T, 0, 40, null);
  assert.equal(s.from('e', T + SCAN_SKIP_MS - 1), 40);
  assert.equal(s.from('e', T + SCAN_SKIP_MS), 0, 'at most SCAN_SKIP_MS');
  assert.deepEqual(s.rows(T), []);
});

test('scan starts: a scan from a skip keeps its deadline; passing nothing changes nothing', () => {
  const s = new ScanStarts();
  s.passed('e', T, 0, 40, T + 500);
  s.passed('e', T + 100, 40, 90, null);
  assert.equal(s.from('e', T + 499), 90, 'moved on');
  assert.equal(s.from('e', T + 500), 0, 'but no later than the older skip said');
  s.passed('e', T, 0, 40, null);
  s.passed('e', T, 40, 40, null);
  assert.equal(s.from('e', T), 40);
  s.passed('e', T, 0, 10, T);
  assert.equal(s.from('e', T), 40, 'a retry due now: no skip is recorded');
});

test('scan starts: a retry recorded after the skip shortens it; forget and forgetAll clear', () => {
  const s = new ScanStarts();
  s.passed('a', T, 0, 40, null);
  s.passed('b', T, 0, 70, null);
  s.retryAt('a', T + 200);
  assert.equal(s.from('a', T + 199), 40);
  assert.equal(s.from('a', T + 200), 0);
  s.retryAt('b', T + 5000);
  assert.deepEqual(s.rows(T + 10), [{ endpoint_id: 'b', from_seq: 70 }], 'a later retry does not lengthen it');
  s.forget('b');
  assert.equal(s.from('b', T), 0);
  s.passed('a', T, 0, 40, null);
  s.passed('b', T, 0, 70, null);
  s.forgetAll();
  assert.deepEqual(s.rows(T), []);
});
