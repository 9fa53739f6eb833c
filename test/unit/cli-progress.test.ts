/** The CLI's progress printer (colours only on a TTY without NO_COLOR, updating line vs periodic lines, --quiet) and its flag parsers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSince, parseTimeout } from '../../src/cli/commands/recover.js';
import { describeStep } from '../../src/cli/commands/sync.js';
import { CliExit } from '../../src/cli/exit.js';
import { colourEnabled, elapsed, Progress } from '../../src/cli/progress.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => (out.push(s), true) } };
}

describe('cli progress', () => {
  it('colours only a TTY, and never with NO_COLOR set', () => {
    assert.equal(colourEnabled({ isTTY: true }, {}), true);
    assert.equal(colourEnabled({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(colourEnabled({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
    assert.equal(colourEnabled({ isTTY: false }, {}), false);
    assert.equal(colourEnabled({}, {}), false);
  });

  it('prints plain lines with the time elapsed off a terminal; repeats an update only when it changed (not too often) or as a heartbeat', () => {
    let now = 0;
    const { out, stream } = sink(false);
    const p = new Progress('recover x:', { stream, env: {}, now: () => now, minIntervalMs: 2000, heartbeatMs: 30_000 });
    p.line('queued 2');
    p.update('0/2 delivered');
    now = 500;
    p.update('1/2 delivered'); // changed, but too soon
    now = 2500;
    p.update('1/2 delivered');
    now = 10_000;
    p.update('1/2 delivered'); // unchanged, no heartbeat yet
    now = 33_000;
    p.update('1/2 delivered'); // heartbeat
    p.line('2/2 delivered', 34_000);
    assert.deepEqual(out, [
      'recover x: queued 2  (0 ms)\n',
      'recover x: 0/2 delivered  (0 ms)\n',
      'recover x: 1/2 delivered  (2.5 s)\n',
      'recover x: 1/2 delivered  (33.0 s)\n',
      'recover x: 2/2 delivered  (34.0 s)\n',
    ]);
    assert.ok(out.every((l) => !l.includes('\x1b')));
  });

  it('on a terminal rewrites one updating line, which the final line replaces; colours unless NO_COLOR', () => {
    const { out, stream } = sink(true);
    const p = new Progress('sync c:', { stream, env: {}, now: () => 0 });
    p.update('1 pending');
    p.update('0 pending');
    p.line('done');
    assert.equal(out.join(''), '\r\x1b[2K\x1b[1msync c:\x1b[22m 1 pending  \x1b[2m(0 ms)\x1b[22m\r\x1b[2K\x1b[1msync c:\x1b[22m 0 pending  \x1b[2m(0 ms)\x1b[22m\r\x1b[2K\x1b[1msync c:\x1b[22m done  \x1b[2m(0 ms)\x1b[22m\n');
    const plain = sink(true);
    new Progress('sync c:', { stream: plain.stream, env: { NO_COLOR: '1' }, now: () => 0 }).line('done');
    assert.deepEqual(plain.out, ['sync c: done  (0 ms)\n']);
  });

  it('prints nothing with quiet', () => {
    const { out, stream } = sink(true);
    const p = new Progress('sync c:', { stream, quiet: true });
    p.line('a');
    p.update('b');
    assert.deepEqual(out, []);
  });

  it('formats durations and steps', () => {
    assert.deepEqual([elapsed(850), elapsed(12_340), elapsed(245_000)], ['850 ms', '12.3 s', '4 min 05 s']);
    assert.equal(describeStep({ step: 'schedule read', count: 5000, ms: 1 }), 'schedule read (5,000 appointments)');
    assert.equal(describeStep({ step: 'planned', count: 1, ms: 1 }), 'planned (1 event)');
  });

  it('parses --since with a zone or as a date, and refuses the rest naming the flag', () => {
    assert.equal(parseSince('2026-11-02T15:00:00Z'), Date.UTC(2026, 10, 2, 15));
    assert.equal(parseSince('2026-11-02T17:00:00.000+02:00'), Date.UTC(2026, 10, 2, 15));
    assert.equal(parseSince('2026-11-02'), Date.UTC(2026, 10, 2));
    for (const bad of ['yesterday', '2026-11-02T15:00:00', '2026-13-45', '']) {
      assert.throws(() => parseSince(bad), (e: unknown) => e instanceof CliExit && e.exitCode === 2 && e.message.startsWith('--since must be an ISO 8601 time'), bad);
    }
    assert.equal(parseTimeout('1.5'), 1500);
    assert.throws(() => parseTimeout('0'), (e: unknown) => e instanceof CliExit && e.exitCode === 2 && /--timeout/.test(e.message));
  });
});
