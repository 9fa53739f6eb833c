/**
 * The MLLP framer, pure: a table of byte streams (each fed whole, and again one byte at a time)
 * with the frames and the error they must give, and properties over random frames and random
 * chunkings: however the bytes are cut, the same frames come out, in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeMllpFrame, MLLP_ERROR_CODES, MllpError, MllpFramer } from '../../src/connectors/hl7v2/mllp-framer.js';
import type { MllpErrorCode, MllpFramingReason } from '../../src/connectors/hl7v2/mllp-framer.js';

const SB = '\x0b';
const EB = '\x1c';
const CR = '\r';
const framed = (s: string) => `${SB}${s}${EB}${CR}`;
const bytes = (s: string) => Buffer.from(s, 'latin1');

/** Feeds `chunks` in order; returns every frame (as latin1 text) and the first error. */
function run(chunks: Buffer[], maxBytes?: number) {
  const framer = new MllpFramer(maxBytes === undefined ? {} : { maxBytes });
  const frames: string[] = [];
  let error: MllpError | null = null;
  for (const c of chunks) {
    const r = framer.push(c);
    frames.push(...r.frames.map((f) => f.toString('latin1')));
    error ??= r.error;
  }
  return { frames, error, framer };
}

const oneByteAtATime = (b: Buffer) => [...b].map((x) => Buffer.from([x]));

interface Case {
  name: string;
  stream: string;
  maxBytes?: number;
  frames: string[];
  error?: { code: MllpErrorCode; reason?: MllpFramingReason; offset?: number };
}

const MSG = 'MSH|^~\\&|EHR|CLINIC|||20260101120000||SIU^S12|CTRL1|P|2.5\rSCH|A1';

const CASES: Case[] = [
  { name: 'one frame', stream: framed(MSG), frames: [MSG] },
  { name: 'an empty frame is an empty payload', stream: framed(''), frames: [''] },
  { name: 'two coalesced frames, both, in order', stream: framed('one') + framed('two'), frames: ['one', 'two'] },
  { name: 'CR/LF between and around frames is skipped', stream: `\r\n${framed('a')}\n${framed('b')}\r\n\r\n`, frames: ['a', 'b'] },
  { name: 'CR inside a payload is content (HL7 segment separator)', stream: framed('A\rB\r'), frames: ['A\rB\r'] },
  { name: 'bytes before a start block', stream: `x${framed('a')}`, frames: [], error: { code: 'malformed_framing', reason: 'data_outside_frame', offset: 0 } },
  { name: 'raw HL7 without framing', stream: `${MSG}\r`, frames: [], error: { code: 'malformed_framing', reason: 'data_outside_frame', offset: 0 } },
  { name: 'a TLS ClientHello on a plaintext port', stream: '\x16\x03\x01\x02\x00', frames: [], error: { code: 'malformed_framing', reason: 'data_outside_frame', offset: 0 } },
  { name: 'garbage after a good frame: the good frame is kept', stream: `${framed('ok')}GET / HTTP/1.1`, frames: ['ok'], error: { code: 'malformed_framing', reason: 'data_outside_frame', offset: 5 } },
  { name: 'a start block inside a frame', stream: `${SB}abc${SB}def${EB}${CR}`, frames: [], error: { code: 'malformed_framing', reason: 'start_in_frame', offset: 4 } },
  { name: 'an end block without CR', stream: `${SB}abc${EB}x`, frames: [], error: { code: 'malformed_framing', reason: 'end_without_cr', offset: 5 } },
  { name: 'an end block followed by a start block', stream: `${SB}abc${EB}${SB}`, frames: [], error: { code: 'malformed_framing', reason: 'end_without_cr', offset: 5 } },
  { name: 'an end block outside a frame', stream: `${framed('a')}${EB}${CR}`, frames: ['a'], error: { code: 'malformed_framing', reason: 'data_outside_frame', offset: 4 } },
  { name: 'a payload of exactly maxBytes', stream: framed('12345'), maxBytes: 5, frames: ['12345'] },
  { name: 'a payload of maxBytes + 1', stream: framed('123456'), maxBytes: 5, frames: [], error: { code: 'frame_too_large', offset: 6 } },
  { name: 'too large is detected before the end block arrives', stream: `${SB}123456`, maxBytes: 5, frames: [], error: { code: 'frame_too_large', offset: 6 } },
  { name: 'a frame then an unfinished one', stream: `${framed('a')}${SB}par`, frames: ['a'] },
];

describe('mllp framer', () => {
  for (const c of CASES) {
    for (const [how, chunking] of [
      ['whole', (b: Buffer) => [b]],
      ['one byte at a time', oneByteAtATime],
    ] as const) {
      it(`${c.name} (${how})`, () => {
        const r = run(chunking(bytes(c.stream)), c.maxBytes);
        assert.deepEqual(r.frames, c.frames);
        if (!c.error) {
          assert.equal(r.error, null);
          return;
        }
        assert.ok(r.error instanceof MllpError);
        assert.equal(r.error.code, c.error.code);
        assert.equal(r.error.reason, c.error.reason);
        if (c.error.offset !== undefined) assert.equal(r.error.offset, c.error.offset);
        assert.equal(r.error.retryable, MLLP_ERROR_CODES[c.error.code].retryable);
        assert.ok(!r.error.message.includes('MSH'), 'an error message never quotes the stream');
      });
    }
  }

  it('reports the frame in progress and its buffered bytes', () => {
    const f = new MllpFramer();
    assert.equal(f.inFrame, false);
    f.push(bytes('\r\n'));
    assert.equal(f.inFrame, false, 'whitespace between frames does not start one');
    f.push(bytes(`${SB}abc`));
    assert.deepEqual([f.inFrame, f.bufferedBytes], [true, 3]);
    f.push(bytes(EB));
    assert.equal(f.inFrame, true, 'an end block without its CR has not ended the frame');
    const r = f.push(bytes(CR));
    assert.deepEqual([r.frames.map(String), f.inFrame, f.bufferedBytes], [['abc'], false, 0]);
  });

  it('stays stopped after an error: later pushes return the same error and no frame', () => {
    const f = new MllpFramer({ maxBytes: 3 });
    const first = f.push(bytes(`${SB}abcd`));
    assert.equal(first.error?.code, 'frame_too_large');
    const later = f.push(bytes(framed('ok')));
    assert.deepEqual(later.frames, []);
    assert.equal(later.error, first.error);
    assert.equal(f.error, first.error);
    assert.deepEqual([f.inFrame, f.bufferedBytes], [false, 0], 'nothing is held after an error');
  });

  it('returns frames that do not alias the chunk they came from', () => {
    const f = new MllpFramer();
    const chunk = bytes(framed('abc'));
    const [frame] = f.push(chunk).frames;
    chunk.fill(0);
    assert.equal(frame?.toString(), 'abc');
  });

  it('accepts Uint8Array chunks', () => {
    const f = new MllpFramer();
    const r = f.push(new Uint8Array(bytes(framed('u8'))));
    assert.deepEqual(r.frames.map(String), ['u8']);
  });

  it('refuses a maxBytes that is not a positive integer', () => {
    for (const maxBytes of [0, -1, 1.5, Number.NaN]) assert.throws(() => new MllpFramer({ maxBytes }), RangeError);
  });

  it('encodes frames, and refuses payloads holding MLLP control bytes', () => {
    assert.deepEqual(encodeMllpFrame('abc'), bytes(framed('abc')));
    assert.deepEqual(encodeMllpFrame(Buffer.from('é')), Buffer.concat([bytes(SB), Buffer.from('é'), bytes(EB + CR)]));
    for (const bad of [`a${SB}b`, `a${EB}b`]) {
      assert.throws(
        () => encodeMllpFrame(bad),
        (err: unknown) => err instanceof MllpError && err.code === 'malformed_framing' && err.reason === 'control_byte_in_payload',
      );
    }
  });

  it('every error code has a summary and a retryable flag', () => {
    for (const [code, entry] of Object.entries(MLLP_ERROR_CODES)) {
      assert.match(code, /^[a-z_]+$/);
      assert.equal(typeof entry.retryable, 'boolean');
      assert.ok(entry.summary.length > 10);
    }
  });

  // A payload is any bytes but the two MLLP control bytes (CR included: it separates HL7 segments).
  const payload = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a.filter((b) => b !== 0x0b && b !== 0x1c)));
  /** Cut points that split `length` bytes into chunks (sorted, de-duplicated). */
  const cutsOf = (length: number) => fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: Math.min(length, 60) }).map((xs) => xs.sort((a, b) => a - b));
  const split = (stream: Buffer, cuts: number[]) => {
    const out: Buffer[] = [];
    let from = 0;
    for (const c of [...cuts.filter((c) => c < stream.length), stream.length]) {
      out.push(stream.subarray(from, c));
      from = c;
    }
    return out;
  };

  it('property: any chunking of a stream of frames yields the same frames, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(payload, fc.constantFrom('', '\n', '\r\n')), { maxLength: 12 }).chain((frames) => {
          const stream = Buffer.concat(frames.map(([p, gap]) => Buffer.concat([encodeMllpFrame(p), bytes(gap)])));
          return fc.tuple(fc.constant(frames.map(([p]) => p)), fc.constant(stream), cutsOf(stream.length));
        }),
        ([expected, stream, cuts]) => {
          const r = run(split(stream, cuts));
          assert.equal(r.error, null);
          assert.deepEqual(r.frames.map((f) => Buffer.from(f, 'latin1')), expected);
          assert.equal(r.framer.inFrame, false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: on arbitrary bytes, push never throws, never holds more than maxBytes, and chunking does not change the outcome', () => {
    fc.assert(
      fc.property(
        // Biased toward the bytes that matter (control bytes, CR/LF, start blocks) and toward streams
        // that begin with a frame, so the runs reach every state and error, not only data_outside_frame.
        fc
          .tuple(fc.boolean(), fc.array(fc.oneof(fc.constantFrom(0x0b, 0x1c, 0x0d, 0x0a, 0x41), fc.integer({ min: 0, max: 255 })), { maxLength: 400 }))
          .map(([framedStart, a]) => Buffer.from(framedStart ? [0x0b, ...a] : a))
          .chain((stream) => fc.tuple(fc.constant(stream), cutsOf(stream.length))),
        ([stream, cuts]) => {
          const maxBytes = 64;
          const whole = run([stream], maxBytes);
          const framer = new MllpFramer({ maxBytes });
          const frames: Buffer[] = [];
          let error: MllpError | null = null;
          for (const chunk of split(stream, cuts)) {
            const r = framer.push(chunk);
            frames.push(...r.frames);
            error ??= r.error;
            assert.ok(framer.bufferedBytes <= maxBytes);
          }
          assert.deepEqual(frames.map((f) => f.toString('latin1')), whole.frames);
          assert.deepEqual([error?.code, error?.reason, error?.offset], [whole.error?.code, whole.error?.reason, whole.error?.offset]);
        },
      ),
      { numRuns: 500 },
    );
  });
});
