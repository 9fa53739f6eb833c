/**
 * The HL7 v2 ACK builder (connectors/hl7v2/ack.ts): AA/AE/AR answers to the fixtures, read back
 * with our parser and with node-hl7-client; swapped applications, echoed control ID, version,
 * delimiters and character set; the ERR segment (v2.5 fields, plus ERR-1 and MSA-3 before 2.5)
 * with escaped, clipped text; an ACK for a message with no usable MSH; the time formats.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Message } from 'node-hl7-client';
import { buildAck, hl7DateTime } from '../../src/connectors/hl7v2/ack.js';
import type { Hl7Header } from '../../src/connectors/hl7v2/message.js';
import { encodeText, Hl7Message } from '../../src/connectors/hl7v2/message.js';

const FIXTURES = new URL('../fixtures/hl7/', import.meta.url);
const siu = Hl7Message.parse(readFileSync(new URL('siu-s12-epic.hl7', FIXTURES)));
const adt = Hl7Message.parse(readFileSync(new URL('adt-a08-latin1.hl7', FIXTURES)));
const NOW = Date.parse('2026-12-06T15:15:30.250Z');
const base = { now: NOW, controlId: 'ACK-0001' };

/**
 * Parses an ACK and checks what is given: header fields, MSA-1.. in order, and ERR fields as sent
 * (raw, by field number). Returns the parsed ACK for further checks.
 */
function checkAck(ack: string, want: { header?: Partial<Hl7Header>; msa?: string[]; err?: Record<number, string> }): Hl7Message {
  const m = Hl7Message.parse(ack);
  for (const [key, value] of Object.entries(want.header ?? {})) assert.equal(m.header[key as keyof Hl7Header], value, `header.${key}`);
  want.msa?.forEach((value, i) => assert.equal(m.segment('MSA')!.get(i + 1), value, `MSA-${i + 1}`));
  for (const [field, value] of Object.entries(want.err ?? {})) assert.equal(m.segment('ERR')!.raw(Number(field)), value, `ERR-${field}`);
  return m;
}

describe('AA', () => {
  const ack = buildAck(siu, 'AA', base);
  const m = Hl7Message.parse(ack);

  it('is an ACK for the trigger, with our control ID and the time passed in', () => {
    assert.equal(m.header.messageType, 'ACK');
    assert.equal(m.header.triggerEvent, 'S12');
    assert.equal(m.header.structure, 'ACK');
    assert.equal(m.header.controlId, 'ACK-0001');
    assert.equal(m.header.dateTime, '20261206151530+0000');
  });

  it('echoes the original control ID in MSA-2 and has no ERR', () => {
    assert.deepEqual(m.segments.map((s) => s.name), ['MSH', 'MSA']);
    assert.equal(m.segment('MSA')!.get(1), 'AA');
    assert.equal(m.segment('MSA')!.get(2), '8675309');
    assert.equal(m.segment('MSA')!.fieldCount, 2, 'no MSA-3 in v2.5.1');
  });

  it('swaps applications and facilities, keeping their components', () => {
    const msh = m.segment('MSH')!;
    assert.equal(msh.raw(3), 'EHRSYNC', 'default: the application the message was sent to');
    assert.equal(msh.raw(4), 'CLINIC42');
    assert.equal(msh.raw(5), 'EPIC');
    assert.equal(msh.raw(6), 'NORTHSIDE^1.2.840.114350.1.13.999^ISO');
  });

  it('keeps version, processing ID, character set and encoding characters', () => {
    assert.equal(m.header.version, '2.5.1');
    assert.equal(m.header.processingId, 'P');
    assert.equal(m.header.charset, 'UNICODE UTF-8');
    assert.equal(m.segment('MSH')!.get(2), '^~\\&');
  });

  it('ends every segment with CR, and nothing else', () => {
    assert.ok(ack.endsWith('\r'));
    assert.equal(ack.split('\r').length, 3);
    assert.ok(!ack.includes('\n'));
    assert.match(ack, /^MSH\|\^~\\&\|EHRSYNC\|CLINIC42\|EPIC\|NORTHSIDE\^1\.2\.840\.114350\.1\.13\.999\^ISO\|20261206151530\+0000\|\|ACK\^S12\^ACK\|ACK-0001\|P\|2\.5\.1\|\|\|\|\|\|UNICODE UTF-8\rMSA\|AA\|8675309\r$/);
  });

  it('reads the same in node-hl7-client', () => {
    const other = new Message({ text: ack });
    assert.equal(other.get('MSH.9.1').toString(), 'ACK');
    assert.equal(other.get('MSH.9.2').toString(), 'S12');
    assert.equal(other.get('MSH.10').toString(), 'ACK-0001');
    assert.equal(other.get('MSH.5').toString(), 'EPIC');
    assert.equal(other.get('MSA.1').toString(), 'AA');
    assert.equal(other.get('MSA.2').toString(), '8675309');
  });

  it('uses our application and facility when given, escaped', () => {
    const own = Hl7Message.parse(buildAck(siu, 'AA', { ...base, sendingApplication: 'ehrsync', sendingFacility: 'A&B|C' }));
    assert.equal(own.header.sendingApplication, 'ehrsync');
    assert.equal(own.header.sendingFacility, 'A&B|C');
    assert.equal(own.header.receivingApplication, 'EPIC');
  });

  it('ignores an error: AA never carries ERR', () => {
    const m2 = Hl7Message.parse(buildAck(siu, 'AA', { ...base, error: { code: '207', text: 'x' } }));
    assert.equal(m2.segment('ERR'), undefined);
  });
});

describe('AE and AR', () => {
  it('AE carries a v2.5 ERR: location, table 0357 code, severity E, user message', () => {
    const ack = buildAck(siu, 'AE', { ...base, error: { code: '101', text: 'PID-3 has no MRN identifier', location: 'PID-3.1' } });
    const m = Hl7Message.parse(ack);
    const err = m.segment('ERR')!;
    assert.equal(m.segment('MSA')!.get(1), 'AE');
    assert.equal(m.segment('MSA')!.get(2), '8675309');
    assert.equal(err.raw(1), '', 'ERR-1 is for receivers before 2.5');
    assert.equal(err.raw(2), 'PID^1^3^1^1');
    assert.equal(err.raw(3), '101^Required field missing^HL70357');
    assert.equal(err.get(4), 'E');
    assert.equal(err.get(8), 'PID-3 has no MRN identifier');
    const other = new Message({ text: ack });
    assert.equal(other.get('ERR.3.1').toString(), '101');
    assert.equal(other.get('ERR.2.3').toString(), '3');
    assert.equal(other.get('ERR.8').toString(), 'PID-3 has no MRN identifier');
  });

  it('AR for an unsupported message type', () => {
    const m = Hl7Message.parse(buildAck(siu, 'AR', { ...base, error: { code: '200', text: 'message type SIU^S99 is not supported', location: 'MSH-9' } }));
    assert.equal(m.segment('MSA')!.get(1), 'AR');
    assert.equal(m.segment('ERR')!.raw(2), 'MSH^1^9^1');
    assert.equal(m.segment('ERR')!.get(3, 2), 'Unsupported message type');
    assert.equal(m.segment('ERR')!.get(8), 'message type SIU^S99 is not supported');
  });

  it('escapes the text, so delimiters in it cannot break the ACK', () => {
    const text = 'bad | field ^ in ~ segment & with \\ escape';
    const ack = buildAck(siu, 'AE', { ...base, error: { code: '102', text, location: 'SCH-11.4' } });
    const m = Hl7Message.parse(ack);
    assert.equal(m.segments.length, 3);
    assert.equal(m.segment('ERR')!.get(8), text);
    assert.equal(new Message({ text: ack }).get('ERR.8').toString(), text);
  });

  it('keeps the text on one line and clips it', () => {
    const m = Hl7Message.parse(buildAck(siu, 'AE', { ...base, error: { code: '207', text: `line one\r\nline two\t${'x'.repeat(500)}` } }));
    const text = m.segment('ERR')!.get(8);
    assert.ok(text.startsWith('line one line two x'));
    assert.equal(text.length, 200);
    assert.ok(text.endsWith('x...'), 'an ASCII ellipsis: the ACK may be in an ASCII charset');
    assert.equal(m.segments.length, 3);
  });

  it('clips on code points: never half a surrogate pair, 200 characters', () => {
    for (const pad of [0, 1]) {
      const text = 'x'.repeat(196 + pad) + '😀'.repeat(10);
      const ack = buildAck(siu, 'AE', { ...base, error: { code: '207', text } });
      const got = Hl7Message.parse(ack).segment('ERR')!.get(8);
      assert.ok(got.endsWith('...'));
      assert.equal([...got].length, 200);
      assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(got), 'no lone surrogate');
      assert.ok(Buffer.from(ack, 'utf8').toString('utf8') === ack, 'valid UTF-16 round-trips through UTF-8');
    }
    const exact = 'é'.repeat(200);
    assert.equal(Hl7Message.parse(buildAck(siu, 'AE', { ...base, error: { code: '207', text: exact } })).segment('ERR')!.get(8), exact, '200 is not clipped');
  });

  it('AE or AR without an error says 207 application internal error', () => {
    for (const code of ['AE', 'AR'] as const) {
      const err = Hl7Message.parse(buildAck(siu, code, base)).segment('ERR')!;
      assert.equal(err.raw(3), '207^Application internal error^HL70357');
      assert.equal(err.raw(2), '');
      assert.equal(err.get(4), 'E');
    }
  });

  it('a code outside table 0357 is sent as given, without a name', () => {
    const err = Hl7Message.parse(buildAck(siu, 'AE', { ...base, error: { code: '999', text: 'local' } })).segment('ERR')!;
    assert.equal(err.raw(3), '999^^HL70357');
  });

  it('reads every location form', () => {
    const loc = (location: string) => Hl7Message.parse(buildAck(siu, 'AE', { ...base, error: { code: '101', text: 't', location } })).segment('ERR')!.raw(2);
    assert.equal(loc('PID'), 'PID^1');
    assert.equal(loc('PID-13'), 'PID^1^13^1');
    assert.equal(loc('PID-13[2].7'), 'PID^1^13^2^7');
    assert.equal(loc('AIP[2]-3.1.2'), 'AIP^2^3^1^1^2');
    const messages = new Set<string>();
    for (const bad of ['pid-3', 'PID-', 'PID-3.', 'PID 3', 'PID-3-4', 'JANE DOE']) {
      assert.throws(() => buildAck(siu, 'AE', { ...base, error: { code: '101', text: 't', location: bad } }), (e: Error) => e instanceof RangeError && messages.add(e.message) !== undefined, bad);
    }
    assert.equal(messages.size, 1, 'the error does not depend on (or quote) the location given');
    assert.ok(![...messages][0]!.includes('JANE'));
  });
});

describe('older versions, other character sets and delimiters', () => {
  it('before 2.5 also fills MSA-3 and ERR-1, for receivers that know no ERR-2..8', () => {
    checkAck(buildAck(adt, 'AE', { ...base, error: { code: '101', text: 'PID-3 is empty', location: 'PID-3' } }), {
      header: { version: '2.3.1', triggerEvent: 'A08', structure: 'ACK' },
      msa: ['AE', 'ADT000042', 'PID-3 is empty'],
      err: { 1: 'PID^1^3^101&Required field missing&HL70357', 2: 'PID^1^3^1', 8: 'PID-3 is empty' },
    });
  });

  it('before 2.3.1, MSH-9 has no third component (ACK^<trigger>)', () => {
    for (const [version, msh9] of [['2.1', 'ACK^A08'], ['2.2', 'ACK^A08'], ['2.3', 'ACK^A08'], ['2.3.1', 'ACK^A08^ACK'], ['2.4', 'ACK^A08^ACK'], ['2.8.2', 'ACK^A08^ACK']] as const) {
      const original = Hl7Message.parse(`MSH|^~\\&|LAB|FAC|EHRSYNC|CLINIC|20261206||ADT^A08|X1|P|${version}\rPID|1\r`);
      const m = checkAck(buildAck(original, 'AE', { ...base, error: { code: '101', text: 't', location: 'PID-3' } }), {
        header: { version, messageType: 'ACK', triggerEvent: 'A08', structure: msh9.endsWith('^ACK') ? 'ACK' : '' },
        msa: ['AE', 'X1'],
      });
      assert.equal(m.segment('MSH')!.raw(9), msh9, version);
    }
    const noTrigger = Hl7Message.parse('MSH|^~\\&|LAB|FAC|EHRSYNC|CLINIC|20261206||ADT|X1|P|2.2\r');
    assert.equal(Hl7Message.parse(buildAck(noTrigger, 'AA', base)).segment('MSH')!.raw(9), 'ACK');
  });

  it('answers in the original character set: MSH-18 echoed, encodeText gives its bytes', () => {
    const ack = buildAck(adt, 'AA', { ...base, sendingFacility: 'Clinique Saint-Éloi' });
    const m = Hl7Message.parse(ack);
    assert.equal(m.header.charset, '8859/1');
    const bytes = encodeText(ack, m.header.charset);
    assert.ok(bytes.includes(Buffer.from([0xc9])), 'É as one ISO 8859-1 byte');
    assert.equal(Hl7Message.parse(bytes).header.sendingFacility, 'Clinique Saint-Éloi');
    assert.equal(Hl7Message.parse(bytes).header.receivingApplication, 'CERNER');
  });

  it('uses the original encoding characters, truncation character included', () => {
    const original = Hl7Message.parse('MSH$*@!%#$LAB$FAC$EHRSYNC$CLINIC$20261206$$ADT*A08$X9$T$2.7\rPID$1\r');
    const ack = buildAck(original, 'AE', { ...base, controlId: 'A$1', error: { code: '102', text: 'a $ b * c # d', location: 'PID-7' } });
    assert.ok(ack.startsWith('MSH$*@!%#$EHRSYNC$CLINIC$LAB$FAC$'));
    const m = Hl7Message.parse(ack);
    assert.equal(m.header.processingId, 'T', 'answered in the same processing mode');
    assert.equal(m.header.controlId, 'A$1');
    assert.equal(m.header.structure, 'ACK');
    assert.equal(m.segment('MSA')!.get(2), 'X9');
    assert.equal(m.segment('ERR')!.raw(2), 'PID*1*7*1');
    assert.equal(m.segment('ERR')!.get(8), 'a $ b * c # d');
  });
});

describe('no usable MSH', () => {
  it('builds an AR with what is known: version 2.5, default delimiters, empty MSA-2', () => {
    const ack = buildAck(null, 'AR', { ...base, sendingApplication: 'EHRSYNC', sendingFacility: 'CLINIC42', error: { code: '100', text: 'the message does not start with an MSH segment' } });
    const m = checkAck(ack, {
      header: { version: '2.5', messageType: 'ACK', triggerEvent: '', structure: 'ACK', processingId: 'P', sendingApplication: 'EHRSYNC', receivingApplication: '' },
      msa: ['AR', ''],
      err: { 3: '100^Segment sequence error^HL70357', 8: 'the message does not start with an MSH segment' },
    });
    assert.equal(m.segment('MSH')!.get(2), '^~\\&');
    assert.match(ack, /^MSH\|\^~\\&\|EHRSYNC\|CLINIC42\|\|\|20261206151530\+0000\|\|ACK\^\^ACK\|ACK-0001\|P\|2\.5\rMSA\|AR\|\rERR\|/);
  });
  it('names the MSH-10 read from the unparsable message in MSA-2 when given (escaped)', () => {
    const ack = buildAck(null, 'AR', { ...base, originalControlId: 'MSG|77', error: { code: '203', text: 'unsupported version' } });
    assert.equal(Hl7Message.parse(ack).segment('MSA')!.get(2), 'MSG|77');
    assert.match(ack, /\rMSA\|AR\|MSG\\F\\77\r/);
  });
});

describe('hl7DateTime', () => {
  it('formats epoch ms and ISO strings as UTC with an explicit offset', () => {
    assert.equal(hl7DateTime(NOW), '20261206151530+0000');
    assert.equal(hl7DateTime('2026-12-06T10:15:30-05:00'), '20261206151530+0000');
    assert.equal(hl7DateTime(0), '19700101000000+0000');
  });

  it('takes an HL7 DTM string as it is', () => {
    for (const dtm of ['20261206101530-0500', '20261206101530', '202612061015', '20261206101530.1234+0100', '2026', '20261206+0000']) assert.equal(hl7DateTime(dtm), dtm);
  });

  it('refuses what is not a time, and a DTM that is not a valid one (hl7-time grammar)', () => {
    for (const bad of ['tomorrow', '', Number.NaN, Number.POSITIVE_INFINITY, '20261306', '20260230', '2026120624', ' 20261206', '20261206101530-2500', 'JANE DOE 850214']) {
      assert.throws(() => hl7DateTime(bad), (e: Error) => e instanceof RangeError && !e.message.includes('JANE'), String(bad));
    }
  });
});
