/**
 * The HL7 v2 parser (connectors/hl7v2/message.ts): the fixtures in test/fixtures/hl7 read field by
 * field, every position cross-checked against node-hl7-client (an independent parser), delimiters
 * declared by the message, escape sequences, character sets, empty/absent/null values, accepted
 * versions, and a table of bad inputs each failing with its own Hl7ParseError code.
 *
 * Fixtures (segments end with CR):
 * - siu-s12-epic.hl7 — Epic-style SIU^S12 v2.5.1, UTF-8: SCH, NTE (\.br\), PID (PID-3 MRN + two
 *   other identifiers, PID-13 three phones/e-mail), PV1, RGS, AIS, AIG, AIL (\T\ in the location
 *   name), AIP, and a Z-segment ZSC (\E\, trailing empty fields).
 * - adt-a08-latin1.hl7 — Cerner-style ADT^A08 v2.3.1 in ISO 8859-1 bytes with MSH-18 `8859/1`:
 *   accented names and address, and PID-14 `""` (HL7's explicit null).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Message } from 'node-hl7-client';
import type { Hl7Delimiters } from '../../src/connectors/hl7v2/message.js';
import { DEFAULT_DELIMITERS, DEFAULT_MAX_BYTES, encodeText, escapeValue, Hl7Message, Hl7ParseError, unescapeValue } from '../../src/connectors/hl7v2/message.js';

const FIXTURES = new URL('../fixtures/hl7/', import.meta.url);
const siuBytes = readFileSync(new URL('siu-s12-epic.hl7', FIXTURES));
const adtBytes = readFileSync(new URL('adt-a08-latin1.hl7', FIXTURES));

const MSH = 'MSH|^~\\&|SENDER|FAC|EHRSYNC|CLINIC|20261206101530-0500||ADT^A08^ADT_A01|C1|P|2.5.1';
const msg = (...segments: string[]): string => [MSH, ...segments].join('\r') + '\r';

function parseError(fn: () => unknown): Hl7ParseError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Hl7ParseError, `expected Hl7ParseError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a parse error');
}

describe('Epic SIU^S12 fixture', () => {
  const m = Hl7Message.parse(siuBytes);

  it('reads the header', () => {
    assert.deepEqual(m.header, {
      sendingApplication: 'EPIC',
      sendingFacility: 'NORTHSIDE',
      receivingApplication: 'EHRSYNC',
      receivingFacility: 'CLINIC42',
      dateTime: '20261206101530-0500',
      messageType: 'SIU',
      triggerEvent: 'S12',
      structure: 'SIU_S12',
      controlId: '8675309',
      processingId: 'P',
      version: '2.5.1',
      charset: 'UNICODE UTF-8',
    });
    assert.deepEqual(m.delimiters, DEFAULT_DELIMITERS);
  });

  it('keeps every segment in order, the Z-segment included', () => {
    assert.deepEqual(m.segments.map((s) => s.name), ['MSH', 'SCH', 'NTE', 'PID', 'PV1', 'RGS', 'AIS', 'AIG', 'AIL', 'AIP', 'ZSC']);
    assert.equal(m.segment('ZSC')?.get(2, 1), 'TELEHEALTH');
    assert.equal(m.segment('ZSC')?.get(3, 3), '20261210120000-0500');
    assert.equal(m.segment('OBX'), undefined);
    assert.deepEqual(m.all('OBX'), []);
    assert.equal(m.all('AIP').length, 1);
  });

  it('reads MSH-1 and MSH-2 as the delimiters themselves', () => {
    const msh = m.segment('MSH')!;
    assert.equal(msh.get(1), '|');
    assert.equal(msh.get(2), '^~\\&');
    assert.equal(msh.get(2, 2), '', 'MSH-2 is not split into components');
    assert.equal(msh.repetitions(2), 1);
    assert.equal(msh.get(4, 2), '1.2.840.114350.1.13.999');
    assert.equal(msh.raw(4), 'NORTHSIDE^1.2.840.114350.1.13.999^ISO');
  });

  it('reads repeated PID-3 identifiers and PID-13 phones by repetition', () => {
    const pid = m.segment('PID')!;
    assert.equal(pid.repetitions(3), 3);
    const ids = [1, 2, 3].map((r) => ({ id: pid.get(3, 1, 1, r), authority: pid.get(3, 4, 1, r), type: pid.get(3, 5, 1, r) }));
    assert.deepEqual(ids, [
      { id: 'E1234567', authority: 'EPIC', type: 'MRN' },
      { id: '900112233', authority: 'NORTHSIDE', type: 'PI' },
      { id: '4455667788', authority: 'MEDICAID', type: 'MA' },
    ]);
    assert.equal(pid.get(3, 1, 1, 4), '', 'no fourth repetition');
    assert.equal(pid.repetitions(13), 3);
    assert.deepEqual([1, 2].map((r) => `${pid.get(13, 3, 1, r)} ${pid.get(13, 6, 1, r)}-${pid.get(13, 7, 1, r)}`), ['PH 617-5551234', 'CP 617-5559876']);
    assert.equal(pid.get(13, 4, 1, 3), 'jane.doe@example.com');
    assert.equal(pid.get(5), 'DOE-SMITH', 'component and repetition default to 1');
    assert.equal(pid.get(5, 2, 1, 2), 'JANE');
    assert.equal(pid.get(5, 7, 1, 2), 'M');
  });

  it('unescapes \\T\\ in the location name, \\.br\\ in a note, \\E\\ in the Z-segment', () => {
    assert.equal(m.segment('AIL')!.get(3, 9), 'Family Medicine & Pediatrics');
    assert.equal(m.segment('AIL')!.get(3, 2), 'EXAM 3');
    assert.equal(m.segment('PV1')!.get(3, 9), 'Family Medicine & Pediatrics');
    assert.equal(m.segment('NTE')!.get(3), 'Bring insurance card\nArrive 15 min early');
    assert.equal(m.segment('ZSC')!.get(4), 'Portal\\SMS');
  });

  it('tells empty, absent and trailing fields apart only where it matters', () => {
    const sch = m.segment('SCH')!;
    assert.equal(sch.get(3), '');
    assert.equal(sch.repetitions(3), 0);
    assert.equal(sch.get(25, 2), 'Booked');
    assert.equal(sch.get(26), '', 'beyond the last field');
    assert.equal(sch.fieldCount, 25);
    const zsc = m.segment('ZSC')!;
    assert.equal(zsc.fieldCount, 6, 'trailing separators are fields too');
    assert.equal(zsc.get(6), '');
    assert.equal(zsc.repetitions(6), 0);
  });

  it('reads the same as a string already decoded', () => {
    const fromString = Hl7Message.parse(siuBytes.toString('utf8'));
    assert.deepEqual(fromString.header, m.header);
    assert.deepEqual(fromString.segments.map((s) => s.raw(3)), m.segments.map((s) => s.raw(3)));
  });
});

describe('ISO 8859-1 ADT^A08 fixture', () => {
  it('is Latin-1 on disk: é is one byte, not UTF-8', () => {
    assert.ok(adtBytes.includes(Buffer.from([0xe9])));
    assert.ok(!adtBytes.includes(Buffer.from('é', 'utf8')));
  });

  it('decodes bytes per MSH-18 8859/1', () => {
    const m = Hl7Message.parse(adtBytes);
    const pid = m.segment('PID')!;
    assert.equal(m.header.charset, '8859/1');
    assert.equal(m.header.version, '2.3.1');
    assert.equal(m.header.triggerEvent, 'A08');
    assert.equal(pid.get(5, 1), 'LEFÈVRE');
    assert.equal(pid.get(5, 2), 'Hélène');
    assert.equal(pid.get(5, 3), 'Renée');
    assert.equal(pid.get(11, 1), "12 rue de l'Église");
    assert.equal(pid.get(11, 3), 'Montréal');
    assert.equal(m.segment('PV1')!.get(7, 3), 'ÉMILE');
  });

  it('reports HL7 null "" apart from empty: an A08 clearing a value', () => {
    const pid = Hl7Message.parse(adtBytes).segment('PID')!;
    assert.equal(pid.get(14), '""', 'the text as sent');
    assert.equal(pid.isNull(14), true);
    assert.equal(pid.isNull(13), false);
    assert.equal(pid.isNull(12), false, 'empty is "not sent", not null');
    assert.equal(pid.repetitions(14), 1);
  });

  it('the same bytes declared UTF-8 are refused, not turned into U+FFFD', () => {
    const asUtf8 = Buffer.from(adtBytes.toString('latin1').replace('|8859/1|', '|UNICODE UTF-8|'), 'latin1');
    assert.equal(parseError(() => Hl7Message.parse(asUtf8)).code, 'bad_charset');
  });
});

/**
 * node-hl7-client reads `SEG.F.C.S` (first repetition) and, for other repetitions, numeric
 * 0-based children: field.get(r-1).get(c-1).get(s-1). It takes a string, so the bytes are
 * decoded first (UTF-8, or latin1 for the 8859/1 fixture).
 */
function theirs(m: Message, seg: string, f: number, c: number, s: number, r: number): string {
  if (r === 1) return m.get(`${seg}.${f}.${c}.${s}`).toString();
  const rep = m.get(`${seg}.${f}`).get(r - 1);
  return rep.get(c - 1).get(s - 1).toString();
}

describe('agreement with node-hl7-client on the fixtures', () => {
  // Where the two parsers are known to differ, and why (each also asserted below):
  // - MSH-2: node-hl7-client splits it on `^` (reads ''); HL7 defines MSH-2 as the literal
  //   encoding characters, which we return.
  // - \.br\: node-hl7-client keeps formatting sequences as sent; the brief (and HL7's meaning of
  //   .br, a line break) has us return a newline.
  const divergent = new Set(['MSH-2', 'NTE-3']);

  for (const [name, bytes, text] of [
    ['siu-s12-epic.hl7', siuBytes, siuBytes.toString('utf8')],
    ['adt-a08-latin1.hl7', adtBytes, adtBytes.toString('latin1')],
  ] as const) {
    it(`every position of ${name} reads the same`, () => {
      const ours = Hl7Message.parse(bytes);
      const other = new Message({ text });
      let compared = 0;
      for (const seg of ours.segments) {
        assert.equal(ours.all(seg.name).length, 1, 'fixture segments are unique by name, so SEG paths address them');
        for (let f = 1; f <= seg.fieldCount; f++) {
          if (divergent.has(`${seg.name}-${f}`)) continue;
          const reps = Math.max(1, seg.repetitions(f));
          for (let r = 1; r <= reps; r++) {
            const rep = seg.raw(f).split('~')[r - 1] ?? '';
            const comps = seg.name === 'MSH' && f <= 2 ? [rep] : rep.split('^');
            comps.forEach((comp, ci) => {
              const subs = seg.name === 'MSH' && f <= 2 ? [comp] : comp.split('&');
              subs.forEach((_sub, si) => {
                assert.equal(seg.get(f, ci + 1, si + 1, r), theirs(other, seg.name, f, ci + 1, si + 1, r), `${seg.name}-${f}.${ci + 1}.${si + 1} repetition ${r}`);
                compared++;
              });
            });
          }
        }
      }
      assert.ok(compared > 50, `compared ${compared} positions`);
    });
  }

  it('agrees on the positions the mapping reads, by their usual paths', () => {
    const ours = Hl7Message.parse(siuBytes);
    const other = new Message({ text: siuBytes.toString('utf8') });
    for (const path of ['MSH.9.1', 'MSH.9.2', 'MSH.10', 'MSH.12', 'SCH.2.1', 'SCH.11.4', 'SCH.25.1', 'PID.3.1', 'PID.5.1', 'PID.5.2', 'PID.7', 'PID.13.7', 'AIL.3.9', 'AIP.3.1', 'AIS.3.2', 'ZSC.2.1']) {
      const [seg, f, c = '1'] = path.split('.') as [string, string, string?];
      assert.equal(ours.segment(seg)!.get(Number(f), Number(c)), other.get(path).toString(), path);
    }
  });

  it('the known divergences are what we say they are', () => {
    const ours = Hl7Message.parse(siuBytes);
    const other = new Message({ text: siuBytes.toString('utf8') });
    assert.equal(ours.segment('MSH')!.get(2), '^~\\&');
    assert.equal(other.get('MSH.2').toString(), '');
    assert.equal(ours.segment('NTE')!.get(3), 'Bring insurance card\nArrive 15 min early');
    assert.equal(other.get('NTE.3').toString(), 'Bring insurance card\\.br\\Arrive 15 min early');
    // Highlighting: node-hl7-client drops \H\ and \N\; we keep every sequence we do not decode.
    const text = msg('NTE|1||a \\H\\bold\\N\\ b');
    assert.equal(Hl7Message.parse(text).segment('NTE')!.get(3), 'a \\H\\bold\\N\\ b');
    assert.equal(new Message({ text }).get('NTE.3').toString(), 'a bold b');
  });
});

describe('delimiters declared by the message', () => {
  it('reads custom encoding characters from MSH-1 and MSH-2', () => {
    const text = 'MSH$*@!%$LAB$FAC$EHRSYNC$CLINIC$20261206$$ADT*A08$X9$P$2.4\rPID$1$$A1*B*C@A2*D$$ROE*ANN%MARIE$$$$$$$$555!F!1234@556\r';
    const m = Hl7Message.parse(text);
    const pid = m.segment('PID')!;
    assert.deepEqual(m.delimiters, { field: '$', component: '*', repetition: '@', escape: '!', subcomponent: '%', truncation: '' });
    assert.equal(m.segment('MSH')!.get(1), '$');
    assert.equal(m.segment('MSH')!.get(2), '*@!%');
    assert.equal(m.header.messageType, 'ADT');
    assert.equal(m.header.triggerEvent, 'A08');
    assert.equal(pid.repetitions(3), 2);
    assert.equal(pid.get(3, 3, 1, 1), 'C');
    assert.equal(pid.get(3, 2, 1, 2), 'D');
    assert.equal(pid.get(5, 2, 2), 'MARIE');
    assert.equal(pid.get(13, 1, 1, 1), '555$1234', '!F! is the custom field separator');
    // The usual characters are plain data under these delimiters.
    assert.equal(Hl7Message.parse(text.replace('ROE*ANN', 'R|O^E~&\\')).segment('PID')!.get(5), 'R|O^E~&\\');
  });

  it('accepts the v2.7 truncation character (5th encoding character), keeping values as sent', () => {
    const m = Hl7Message.parse('MSH|^~\\&#|A|B|C|D|20261206||ADT^A08^ADT_A01|1|P|2.7\rPID|1||X1||VERYLONGFAMILYNAM#^ANN||||||1 \\P\\ 2 ST\r');
    assert.equal(m.delimiters.truncation, '#');
    assert.equal(m.segment('MSH')!.get(2), '^~\\&#');
    assert.equal(m.segment('PID')!.get(5), 'VERYLONGFAMILYNAM#', 'the truncation mark is a hint; the text is kept as sent');
    assert.equal(m.segment('PID')!.get(11), '1 # 2 ST', '\\P\\ is the truncation character');
    assert.equal(m.segment('PID')!.isTruncated(5), true);
    assert.equal(m.segment('PID')!.isTruncated(5, 2), false);
    assert.equal(m.segment('PID')!.isTruncated(11), false);
    assert.equal(m.segment('MSH')!.isTruncated(2), false, 'MSH-2 ends with # because it declares it');
    assert.equal(Hl7Message.parse(msg('PID|1||||A#')).segment('PID')!.isTruncated(5), false, 'no truncation character declared');
  });

  it('keeps \\P\\ as sent when no truncation character is declared', () => {
    assert.equal(Hl7Message.parse(msg('NTE|1||a\\P\\b')).segment('NTE')!.get(3), 'a\\P\\b');
  });
});

describe('escape sequences', () => {
  const cases: Array<[string, string, string]> = [
    ['delimiters', 'a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f', 'a|b^c&d~e\\f'],
    ['hex, one byte', 'x\\X41\\y', 'xAy'],
    ['hex, several bytes', 'line1\\X0D0A\\line2', 'line1\r\nline2'],
    ['hex, UTF-8 bytes in a UTF-8 message', 'Ren\\XC3A9\\e', 'Renée'],
    ['hex, lower case', '\\X6a\\', 'j'],
    ['line break', 'a\\.br\\b', 'a\nb'],
    ['highlighting kept', '\\H\\a\\N\\', '\\H\\a\\N\\'],
    ['formatting kept', 'a\\.sp2\\b\\.in+4\\c', 'a\\.sp2\\b\\.in+4\\c'],
    ['character set switch kept', '\\C2842\\x', '\\C2842\\x'],
    ['local escape kept', '\\Zfoo\\', '\\Zfoo\\'],
    ['odd hex digits kept', '\\X4\\', '\\X4\\'],
    ['non-hex kept', '\\XZZ\\', '\\XZZ\\'],
    ['empty sequence kept', 'a\\\\b', 'a\\\\b'],
    ['unterminated kept', 'a\\F', 'a\\F'],
    ['adjacent', '\\F\\\\S\\', '|^'],
  ];
  for (const [name, sent, read] of cases) {
    it(name, () => {
      assert.equal(Hl7Message.parse(msg(`NTE|1||${sent}`)).segment('NTE')!.get(3), read);
    });
  }

  it('hex bytes are read in the message character set (8859/1: one byte per character)', () => {
    const bytes = Buffer.from(`${MSH}|||||8859/1\rNTE|1||Ren\\XE9\\e\r`, 'latin1');
    assert.equal(Hl7Message.parse(bytes).segment('NTE')!.get(3), 'Renée');
  });

  it('escape characters in data never split a value (\\S\\ stays inside its component)', () => {
    const pid = Hl7Message.parse(msg('PID|1||A\\S\\B^C\\T\\D&E\\R\\F~G')).segment('PID')!;
    assert.equal(pid.repetitions(3), 2);
    assert.equal(pid.get(3, 1), 'A^B');
    assert.equal(pid.get(3, 2, 1), 'C&D');
    assert.equal(pid.get(3, 2, 2), 'E~F');
    assert.equal(pid.get(3, 1, 1, 2), 'G');
  });

  it('escapeValue and unescapeValue are inverse for any text and any delimiters', () => {
    const punct = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'.split('');
    const delims = fc.shuffledSubarray(punct, { minLength: 6, maxLength: 6 }).map(([field, component, repetition, escape, subcomponent, truncation]) => ({ field, component, repetition, escape, subcomponent, truncation }) as Hl7Delimiters);
    fc.assert(
      fc.property(delims, fc.string({ unit: 'grapheme', maxLength: 40 }), (d, s) => {
        const escaped = escapeValue(s, d);
        for (const sep of [d.field, d.component, d.repetition, d.subcomponent, '\r', '\n', '\x0b', '\x1c']) assert.ok(!escaped.includes(sep));
        assert.equal(unescapeValue(escaped, d, (b) => b.toString('utf8')), s);
      }),
      { numRuns: 300 },
    );
  });

  it('escapeValue hex-escapes control characters, so a value cannot end an MLLP frame inside the message', () => {
    const text = 'a\x0bb\x1cc\rd\x00e\tf';
    assert.equal(escapeValue(text), 'a\\X0B\\b\\X1C\\c\\X0D\\d\\X00\\e\tf');
    assert.equal(unescapeValue(escapeValue(text), DEFAULT_DELIMITERS, (b) => b.toString('latin1')), text);
  });

  it('a segment built from escaped values reads back every value at its position', () => {
    const value = fc.string({ unit: 'grapheme', maxLength: 12 });
    fc.assert(
      fc.property(fc.array(fc.array(fc.array(value, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }), (reps) => {
        const field = reps.map((comps) => comps.map((subs) => subs.map((s) => escapeValue(s)).join('&')).join('^')).join('~');
        const seg = Hl7Message.parse(msg(`ZZZ|${field}`)).segment('ZZZ')!;
        reps.forEach((comps, r) => comps.forEach((subs, c) => subs.forEach((s, i) => assert.equal(seg.get(1, c + 1, i + 1, r + 1), s))));
      }),
      { numRuns: 200 },
    );
  });
});

describe('segments, line endings, empty and absent values', () => {
  it('accepts CR, LF and CRLF, blank lines and a missing final terminator alike', () => {
    const segs = [MSH, 'PID|1||X1', 'ZSC|1'];
    const reference = Hl7Message.parse(segs.join('\r'));
    for (const text of [segs.join('\n'), segs.join('\r\n') + '\r\n', `\r\n${segs.join('\r\n\r\n')}\r\n\r\n`, `${segs[0]}\r${segs[1]}\n${segs[2]}\r\n`]) {
      const m = Hl7Message.parse(text);
      assert.deepEqual(m.segments.map((s) => [s.name, s.raw(1), s.raw(3)]), reference.segments.map((s) => [s.name, s.raw(1), s.raw(3)]));
    }
  });

  it('parses a message of only MSH', () => {
    const m = Hl7Message.parse(MSH);
    assert.equal(m.segments.length, 1);
    assert.equal(m.segment('PID'), undefined);
    assert.equal(m.header.controlId, 'C1');
  });

  it('empty fields, absent fields, empty repetitions and invalid indices all read as ""', () => {
    const pid = Hl7Message.parse(msg('PID|1||~X2^^^B||')).segment('PID')!;
    assert.equal(pid.fieldCount, 5);
    assert.equal(pid.get(2), '');
    assert.equal(pid.repetitions(2), 0);
    assert.equal(pid.repetitions(3), 2, 'a leading empty repetition still counts');
    assert.equal(pid.get(3, 1, 1, 1), '');
    assert.equal(pid.get(3, 4, 1, 2), 'B');
    assert.equal(pid.get(3, 9, 1, 2), '');
    assert.equal(pid.get(3, 1, 2, 2), '');
    assert.equal(pid.get(5), '');
    assert.equal(pid.get(60), '');
    assert.equal(pid.repetitions(60), 0);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.equal(pid.get(bad), '');
      assert.equal(pid.get(3, bad), '');
      assert.equal(pid.repetitions(bad), 0);
    }
  });

  it('keeps repeated segments in order for all()', () => {
    const m = Hl7Message.parse(msg('NTE|1||a', 'PID|1', 'NTE|2||b', 'ZSC|1', 'NTE|3||c'));
    assert.deepEqual(m.all('NTE').map((s) => s.get(3)), ['a', 'b', 'c']);
    assert.equal(m.segment('NTE')!.get(1), '1');
  });

  it('accepts a segment with a name only, and a BOM before MSH', () => {
    const m = Hl7Message.parse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(msg('ZSC'))]));
    assert.equal(m.segment('ZSC')!.fieldCount, 0);
    assert.equal(Hl7Message.parse(`\ufeff${MSH}`).header.controlId, 'C1');
  });

  it('reads UTF-8 bytes when MSH-18 is empty or ASCII', () => {
    for (const charset of ['', 'ASCII', 'UNICODE UTF-8']) {
      const m = Hl7Message.parse(Buffer.from(`${MSH}||||||${charset}\rPID|1||X||Zoë^Ægir`, 'utf8'));
      assert.equal(m.header.charset, charset);
      assert.equal(m.segment('PID')!.get(5, 1), 'Zoë');
    }
  });

  it('decodes the other ISO 8859 parts MSH-18 names (8859/15: € is 0xA4)', () => {
    const m = Hl7Message.parse(Buffer.concat([Buffer.from(`${MSH}||||||8859/15\rNTE|1||`, 'latin1'), Buffer.from([0xa4]), Buffer.from('\r')]));
    assert.equal(m.segment('NTE')!.get(3), '€');
  });
});

describe('versions', () => {
  for (const v of ['2.1', '2.2', '2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.7.1', '2.8', '2.8.2', '2.5.1^USA']) {
    it(`accepts ${v}`, () => {
      assert.equal(Hl7Message.parse(MSH.replace('|2.5.1', `|${v}`)).header.version, v.split('^')[0]);
    });
  }
  for (const v of ['2.9', '2.0', '3.0', '2', '2.5.1.1', 'v2.5', '']) {
    it(`refuses ${JSON.stringify(v)}`, () => {
      const e = parseError(() => Hl7Message.parse(MSH.replace('|2.5.1', `|${v}`)));
      assert.equal(e.code, 'unsupported_version');
    });
  }
});

describe('bad input: each fails with its own code', () => {
  const over = msg('NTE|1||' + 'x'.repeat(2000));
  const table: Array<[string, () => unknown, string]> = [
    ['empty string', () => Hl7Message.parse(''), 'empty'],
    ['empty buffer', () => Hl7Message.parse(Buffer.alloc(0)), 'empty'],
    ['only line breaks', () => Hl7Message.parse('\r\n\r\n  \r'), 'empty'],
    ['only line breaks, bytes', () => Hl7Message.parse(Buffer.from('\r\n\n \t')), 'empty'],
    ['no MSH: starts with PID', () => Hl7Message.parse('PID|1||X1\r'), 'no_msh'],
    ['no MSH: a batch header', () => Hl7Message.parse(`BHS|^~\\&|A\r${MSH}\rBTS|1\r`), 'no_msh'],
    ['no MSH: text before it', () => Hl7Message.parse(`hello\r${MSH}`), 'no_msh'],
    ['no MSH: lower case', () => Hl7Message.parse(MSH.toLowerCase()), 'no_msh'],
    ['garbage binary', () => Hl7Message.parse(Buffer.concat([Buffer.from([0x00, 0xff, 0x1c]), randomBytes(512)])), 'no_msh'],
    ['garbage binary after MSH', () => Hl7Message.parse(Buffer.concat([Buffer.from('MSH'), Buffer.from([0x00, 0xff, 0x0b, 0x1c, 0x0d])])), 'bad_encoding_characters'],
    ['wrong version', () => Hl7Message.parse(MSH.replace('|2.5.1', '|3.0')), 'unsupported_version'],
    ['no version', () => Hl7Message.parse('MSH|^~\\&|A|B|C|D|20261206||ADT^A08|1|P'), 'unsupported_version'],
    ['over maxBytes (string)', () => Hl7Message.parse(over, { maxBytes: 1000 }), 'too_large'],
    ['over maxBytes (bytes)', () => Hl7Message.parse(Buffer.from(over), { maxBytes: 1000 }), 'too_large'],
    ['over maxBytes counts UTF-8 bytes, not characters', () => Hl7Message.parse(msg('NTE|1||' + 'é'.repeat(600)), { maxBytes: 1000 }), 'too_large'],
    ['over the default limit', () => Hl7Message.parse(Buffer.alloc(DEFAULT_MAX_BYTES + 1, 0x41)), 'too_large'],
    ['MSH-2 too short', () => Hl7Message.parse('MSH|^~|A|B|C|D|20261206||ADT^A08|1|P|2.5'), 'bad_encoding_characters'],
    ['MSH-2 too long', () => Hl7Message.parse('MSH|^~\\&#!|A|B'), 'bad_encoding_characters'],
    ['MSH-2 repeats a character', () => Hl7Message.parse('MSH|^^\\&|A|B|C|D|20261206||ADT^A08|1|P|2.5'), 'bad_encoding_characters'],
    ['MSH-1 is also in MSH-2', () => Hl7Message.parse('MSH^^~\\&^A^B'), 'bad_encoding_characters'],
    ['MSH-2 has a letter', () => Hl7Message.parse('MSH|^~\\A|A|B|C|D|20261206||ADT^A08|1|P|2.5'), 'bad_encoding_characters'],
    ['MSH-1 is a letter', () => Hl7Message.parse('MSHX^~\\&XAXB'), 'bad_encoding_characters'],
    ['MSH-1 is a space', () => Hl7Message.parse('MSH ^~\\& A B'), 'bad_encoding_characters'],
    ['MSH alone, nothing after', () => Hl7Message.parse('MSH'), 'bad_encoding_characters'],
    ['a line that is not a segment', () => Hl7Message.parse(msg('PID|1', 'this is not a segment')), 'bad_segment'],
    ['a lower-case segment name', () => Hl7Message.parse(msg('pid|1')), 'bad_segment'],
    ['a two-letter segment name', () => Hl7Message.parse(msg('PI|1')), 'bad_segment'],
    ['a four-letter segment name', () => Hl7Message.parse(msg('PIDX|1')), 'bad_segment'],
    ['an MLLP byte left in the text', () => Hl7Message.parse(`${MSH}\r\u001c`), 'bad_segment'],
    ['two messages in one', () => Hl7Message.parse(msg('PID|1', MSH, 'PID|2')), 'multiple_messages'],
    ['an unknown MSH-18', () => Hl7Message.parse(Buffer.from(`${MSH}||||||EBCDIC`)), 'bad_charset'],
    ['UTF-16 in MSH-18', () => Hl7Message.parse(Buffer.from(`${MSH}||||||UNICODE UTF-16`)), 'bad_charset'],
    ['invalid UTF-8 without MSH-18', () => Hl7Message.parse(Buffer.concat([Buffer.from(`${MSH}\rPID|1||`), Buffer.from([0xc3, 0x28])])), 'bad_charset'],
  ];
  for (const [name, fn, code] of table) {
    it(`${name} → ${code}`, () => {
      const e = parseError(fn);
      assert.equal(e.code, code);
      assert.equal(e.name, 'Hl7ParseError');
      assert.ok(e.message.length > 0);
    });
  }

  it('a maxBytes that would disable the guard is a programming error', () => {
    for (const maxBytes of [0, -1, Number.NaN]) assert.throws(() => Hl7Message.parse(MSH, { maxBytes }), RangeError);
  });

  it('exactly maxBytes is accepted', () => {
    const text = msg('NTE|1||abc');
    assert.equal(Hl7Message.parse(text, { maxBytes: Buffer.byteLength(text) }).segments.length, 2);
  });

  it('errors name positions and reasons, never the message content', () => {
    const secret = 'JANE^DOE^19850214';
    for (const fn of [
      () => Hl7Message.parse(msg(`PID|1||${secret}`, `${secret}`)),
      () => Hl7Message.parse(`XXX|${secret}`),
      () => Hl7Message.parse(Buffer.concat([Buffer.from(`${MSH}\rPID|1||${secret}`), Buffer.from([0xff])])),
      () => Hl7Message.parse(msg(`PID|1||${secret}`, MSH)),
    ]) {
      const e = parseError(fn);
      assert.ok(!e.message.includes('JANE') && !e.message.includes('19850214'), e.message);
    }
    assert.match(parseError(() => Hl7Message.parse(msg('PID|1', 'oops'))).message, /line 3/);
  });
});

describe('errors never quote what the sender sent', () => {
  // A shifted MSH or a wrong separator puts PID data where MSH-2, MSH-12 or MSH-18 are read.
  const SECRETS = ['JANE', 'DOE', 'Doe', '850214'];
  const clean = (e: Error) => {
    for (const s of SECRETS) assert.ok(!e.message.includes(s), `${e.name}: ${e.message}`);
    assert.match(e.message, /^[\x20-\x7e]+$/, 'ASCII, one line: fit for a log and an ACK');
  };
  const fields = (n: number, value: string) => {
    const f = MSH.split('|');
    while (f.length <= n - 1) f.push('');
    f[n - 1] = value; // f[0] is 'MSH', f[1] MSH-2: MSH-n is f[n-1]
    return f.join('|');
  };

  const cases: Array<[string, () => unknown, string]> = [
    ['MSH-12 holds a name', () => Hl7Message.parse(fields(12, 'DOE')), 'unsupported_version'],
    ['MSH-12 holds a name, components', () => Hl7Message.parse(fields(12, 'DOE^JANE^850214')), 'unsupported_version'],
    ['MSH-18 holds a name and birth date', () => Hl7Message.parse(Buffer.from(fields(18, 'JANE DOE 850214'))), 'bad_charset'],
    ['MSH-18 escaped', () => Hl7Message.parse(Buffer.from(fields(18, 'JANE\\T\\DOE'))), 'bad_charset'],
    ['MSH-2 holds a name (4 characters)', () => Hl7Message.parse('MSH|JANE|DOE|850214'), 'bad_encoding_characters'],
    ['MSH-2 holds a name (more)', () => Hl7Message.parse('MSH|DOE^JANE|850214'), 'bad_encoding_characters'],
    ['MSH-1 is a letter of a name', () => Hl7Message.parse('MSHJANE DOE 850214'), 'bad_encoding_characters'],
    ['a segment named like a name', () => Hl7Message.parse(msg('Doe|JANE|850214')), 'bad_segment'],
    ['a line of patient data', () => Hl7Message.parse(msg('JANE DOE 850214')), 'bad_segment'],
    ['a segment name then no separator', () => Hl7Message.parse(msg('DOEJANE 850214')), 'bad_segment'],
    ['no MSH, patient data first', () => Hl7Message.parse('JANE DOE|850214\r'), 'no_msh'],
    ['invalid UTF-8 next to a name', () => Hl7Message.parse(Buffer.concat([Buffer.from(`${fields(18, 'UNICODE UTF-8')}\rPID|1||DOE^JANE`), Buffer.from([0xff])])), 'bad_charset'],
    ['a second MSH', () => Hl7Message.parse(msg('PID|1||DOE^JANE', fields(12, 'JANE'))), 'multiple_messages'],
  ];
  for (const [name, fn, code] of cases) {
    it(`${name} → ${code}, without the value`, () => {
      const e = parseError(fn);
      assert.equal(e.code, code);
      clean(e);
    });
  }

  it('MSH-12 and MSH-18 errors name the field and the rule', () => {
    assert.equal(parseError(() => Hl7Message.parse(fields(12, 'DOE'))).message, 'MSH-12 (version) is not 2.1 to 2.8 (e.g. 2.3.1, 2.5.1)');
    assert.match(parseError(() => Hl7Message.parse(Buffer.from(fields(18, 'JANE DOE 850214')))).message, /^MSH-18 \(character set\) is not one of /);
  });

  it('a name in any MSH field, string or bytes: whatever fails, the message does not say it', () => {
    for (let n = 2; n <= 20; n++) {
      for (const secret of ['JANE DOE 850214', 'DOE^JANE^850214', 'JANE']) {
        for (const input of [fields(n, secret), Buffer.from(fields(n, secret)), Buffer.from(fields(n, secret), 'latin1')]) {
          try {
            Hl7Message.parse(input, { defaultCharset: '8859/1' });
          } catch (e) {
            assert.ok(e instanceof Hl7ParseError);
            clean(e);
          }
        }
      }
    }
  });

  it('option errors do not quote the option either', () => {
    assert.throws(() => Hl7Message.parse(MSH, { defaultCharset: 'JANE DOE' }), (e: Error) => e instanceof RangeError && !e.message.includes('JANE'));
  });
});

describe('encodeText', () => {
  it('encodes per the character set an ACK echoes', () => {
    assert.deepEqual(encodeText('é', '8859/1'), Buffer.from([0xe9]));
    assert.deepEqual(encodeText('é', 'UNICODE UTF-8'), Buffer.from('é', 'utf8'));
    assert.deepEqual(encodeText('é', ''), Buffer.from('é', 'utf8'));
    assert.deepEqual(encodeText('a€', '8859/1'), Buffer.from('a?', 'latin1'));
    assert.deepEqual(encodeText('aé', '8859/15'), Buffer.from([0x61, 0xe9]));
    assert.deepEqual(encodeText('a€', 'EBCDIC'), Buffer.from('a?', 'latin1'), 'an unknown charset is ASCII');
  });

  it('round-trips 8859/2 and 8859/15 through parse (one byte per character)', () => {
    const cases: Array<[string, string, number[]]> = [
      ['8859/2', 'Łódź, Žluťoučký kůň, Świętosław', [0xa3, 0xf3, 0xbc, 0xae, 0xbb, 0xf9, 0xa6, 0xea, 0xb3]], // Ł ó ź Ž ť ů Ś ę ł
      ['8859/15', 'Œuvre 12 € – Šárka Žofie Ÿvonne', [0xbc, 0xa4, 0xa6, 0xe1, 0xb4, 0xbe]], // Œ € Š á Ž Ÿ
    ];
    for (const [charset, name, bytes] of cases) {
      const text = `${MSH}||||||${charset}\rNTE|1||${name}\r`;
      const wire = encodeText(text, charset);
      assert.equal(wire.length, text.length, 'one byte per character');
      for (const b of bytes) assert.ok(wire.includes(b), `${charset} byte 0x${b.toString(16)}`);
      const back = Hl7Message.parse(wire).segment('NTE')!.get(3);
      assert.equal(back, charset === '8859/15' ? name.replace('–', '?') : name, 'only the en dash (in neither part) is lost');
    }
  });

  it('characters the charset cannot hold become ?', () => {
    assert.deepEqual(encodeText('€Ł', '8859/2'), Buffer.from([0x3f, 0xa3]));
    assert.deepEqual(encodeText('Ł€', '8859/15'), Buffer.from([0x3f, 0xa4]));
    assert.deepEqual(encodeText('😀x', '8859/15'), Buffer.from('?x'), 'one ? per character, not per UTF-16 unit');
    assert.deepEqual(encodeText('’€é\u0081', 'WINDOWS-1252'), Buffer.from([0x92, 0x80, 0xe9, 0x81]));
  });

  it('every byte each ISO 8859 part defines encodes back to itself', () => {
    for (const part of [1, 2, 3, 4, 5, 6, 7, 8, 9, 15]) {
      const decode = part === 1 ? (b: Buffer) => b.toString('latin1') : (b: Buffer) => new TextDecoder(`iso-8859-${part}`).decode(b);
      for (let b = 0; b <= 0xff; b++) {
        const ch = decode(Buffer.from([b]));
        if (ch === '\ufffd') continue; // a byte the part leaves undefined
        assert.deepEqual(encodeText(ch, `8859/${part}`), Buffer.from([b]), `8859/${part} 0x${b.toString(16)}`);
      }
    }
  });
});

describe('defaultCharset: an empty MSH-18 with non-UTF-8 bytes', () => {
  // The Latin-1 fixture with its MSH-18 emptied: what an EHR that sends Latin-1 without saying so sends.
  const silentLatin1 = Buffer.from(adtBytes.toString('latin1').replace('|8859/1|', '||'), 'latin1');

  it('is bad_charset by default (strict UTF-8)', () => {
    assert.equal(parseError(() => Hl7Message.parse(silentLatin1)).code, 'bad_charset');
  });

  it('decodes per defaultCharset, keeping MSH-18 as sent (empty)', () => {
    const viaDefault = Hl7Message.parse(silentLatin1, { defaultCharset: '8859/1' });
    const declared = Hl7Message.parse(adtBytes);
    assert.equal(viaDefault.header.charset, '');
    assert.equal(viaDefault.segment('PID')!.get(5, 2), 'Hélène');
    assert.deepEqual(viaDefault.segments.slice(1).map((seg) => seg.raw(5)), declared.segments.slice(1).map((seg) => seg.raw(5)));
    assert.equal(Hl7Message.parse(silentLatin1, { defaultCharset: 'WINDOWS-1252' }).segment('PID')!.get(5), 'LEFÈVRE', 'cp1252 agrees with Latin-1 on letters');
  });

  it('reads Windows-1252 (€ 0x80, ’ 0x92) and \\X..\\ bytes in that charset', () => {
    const bytes = Buffer.concat([Buffer.from(`${MSH}\rNTE|1||O`, 'latin1'), Buffer.from([0x92]), Buffer.from('Brien 5', 'latin1'), Buffer.from([0x80]), Buffer.from(' \\X80\\\r', 'latin1')]);
    assert.equal(Hl7Message.parse(bytes, { defaultCharset: 'WINDOWS-1252' }).segment('NTE')!.get(3), 'O’Brien 5€ €');
    assert.equal(Hl7Message.parse(bytes, { defaultCharset: 'cp1252' }).segment('NTE')!.get(3), 'O’Brien 5€ €');
    assert.equal(parseError(() => Hl7Message.parse(bytes)).code, 'bad_charset');
  });

  it('a non-empty MSH-18 wins over it', () => {
    const utf8 = Buffer.from(`${MSH}||||||UNICODE UTF-8\rPID|1||X||Zoë`, 'utf8');
    assert.equal(Hl7Message.parse(utf8, { defaultCharset: '8859/1' }).segment('PID')!.get(5), 'Zoë');
    assert.equal(Hl7Message.parse(adtBytes, { defaultCharset: 'UNICODE UTF-8' }).header.charset, '8859/1');
  });

  it('UTF-8 stays readable with the default set to UTF-8 or ASCII', () => {
    for (const defaultCharset of ['', 'ASCII', 'UNICODE UTF-8']) {
      assert.equal(Hl7Message.parse(Buffer.from(`${MSH}\rPID|1||X||Zoë`, 'utf8'), { defaultCharset }).segment('PID')!.get(5), 'Zoë');
    }
  });

  it('an unknown name is a configuration error, whatever the message', () => {
    for (const defaultCharset of ['EBCDIC', 'latin-1', 'UNICODE UTF-16']) {
      assert.throws(() => Hl7Message.parse(silentLatin1, { defaultCharset }), RangeError);
      assert.throws(() => Hl7Message.parse(MSH, { defaultCharset }), RangeError);
    }
  });
});
