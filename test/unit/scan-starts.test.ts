/** How far lease scans skip into an endpoint's queue: what a scan passed, until what can change it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SCAN_SKIP_MS, ScanStarts } from '../../src/store/queue/scan-starts.js';

const T = 1_000_000;

test('scan starts: a skip holds until the first passed delivery can become leasable, at most SCAN_SKIP_MS, and is gone after', () => {
  const s = new ScanStarts();
  assert.equal(s.from('e', T), 0, 'nothing known: from the start');
  s.passed(s.begin(), 'e', T, 0, 40, T + 300);
  assert.equal(s.from('e', T + 299), 40);
  assert.equal(s.from('e', T + 300), 0, 'a retry (or a lease) falls due: from the start again');
  s.passed(s.begin(), 'e', T, 0, 40, null);
  assert.equal(s.from('e', T + SCAN_SKIP_MS - 1), 40);
  assert.equal(s.from('e', T + SCAN_SKIP_MS), 0, 'at most SCAN_SKIP_MS');
  assert.equal(s.json(T), '{}');
});

test('scan starts: a scan from a skip keeps its deadline; passing nothing, or something due now, records nothing', () => {
  const s = new ScanStarts();
  s.passed(s.begin(), 'e', T, 0, 40, T + 500);
  s.passed(s.begin(), 'e', T + 100, 40, 90, null);
  assert.equal(s.from('e', T + 499), 90, 'moved on');
  assert.equal(s.from('e', T + 500), 0, 'but no later than the older skip said');
  s.passed(s.begin(), 'e', T, 0, 40, null);
  s.passed(s.begin(), 'e', T, 40, 40, null);
  assert.equal(s.from('e', T), 40);
  s.forget('e');
  s.passed(s.begin(), 'e', T, 0, 10, T);
  assert.equal(s.from('e', T), 0, 'a delivery leasable now: no skip');
});

test('scan starts: a retry recorded after the skip shortens it; forget and forgetAll clear; a scan begun before a clear records nothing', () => {
  const s = new ScanStarts();
  s.passed(s.begin(), 'a', T, 0, 40, null);
  s.passed(s.begin(), 'b', T, 0, 70, null);
  s.retryAt('a', T + 200);
  assert.equal(s.from('a', T + 199), 40);
  assert.equal(s.from('a', T + 200), 0);
  s.retryAt('b', T + 5000);
  assert.equal(s.json(T + 10), '{"b":70}', 'a later retry does not lengthen it');
  const token = s.begin();
  s.forget('b');
  assert.equal(s.from('b', T), 0);
  s.passed(token, 'b', T, 0, 70, null);
  assert.equal(s.from('b', T), 0, 'what that scan passed may have changed since it began');
  s.passed(s.begin(), 'a', T, 0, 40, null);
  s.forgetAll();
  assert.equal(s.json(T), '{}');
});

test('scan starts: a clock stepping back drops the skip instead of stretching it', () => {
  const s = new ScanStarts();
  s.passed(s.begin(), 'e', T, 0, 40, null);
  assert.equal(s.from('e', T - 5000), 0);
});

test('scan starts: noting what a scan passed is worth it when the scan came back short or the endpoint is failing', () => {
  const s = new ScanStarts();
  assert.equal(s.worthNoting('e', false), false, 'a healthy endpoint whose scan got its share');
  assert.equal(s.worthNoting('e', true), true);
  s.retryAt('e', T + 1000);
  assert.equal(s.worthNoting('e', false), true, 'its latest outcome was a retry');
  s.done('e');
  assert.equal(s.worthNoting('e', false), false, 'and then one succeeded');
});
