/**
 * @module connectors/hl7v2/message — pure HL7 v2 (ER7, "pipe-hat") message parser: one message's
 * bytes or text → its header and segments, with field/component/subcomponent/repetition reads that
 * return unescaped text. No I/O, no clock, no logging; error messages name positions and reasons,
 * never message content (which is patient data).
 *
 * What it relies on (HL7 v2.x chapter 2, "Control", as summarised by public references):
 * - Delimiters come from the message itself: MSH-1 is the field separator (the 4th character), MSH-2
 *   the encoding characters in the order component, repetition, escape, subcomponent, and from v2.7
 *   an optional 5th, the truncation character (`#` by convention) — HL7 v2.7 §2.5.5.2, pre-adopted
 *   by some v2.5.1 guides (US ELR), so it is accepted whatever MSH-12 says. Refs:
 *   hexdocs.pm/hl7v2/encoding-specification.html §1, clovertech.infor.com/forums/topic/encoding-characters.
 * - Segments end with CR; real senders also use LF and CRLF, which are accepted the same way.
 * - Escape sequences (§2.7 "Use of escape sequences in text fields"): \F\ \S\ \T\ \R\ \E\ stand for
 *   the delimiters, \P\ (v2.7) for the truncation character, \Xdddd..\ for one or more pairs of hex
 *   digits whose bytes are read in the message's character set, \.br\ for a line break; the others
 *   (\H\ \N\, formatting \.sp\ \.in\ …, character-set switches \C..\ \M..\, local \Z..\) carry
 *   meaning a plain string cannot hold, so they are kept exactly as sent.
 *   Refs: hl7plus.com/Help/Components/escape-your-data.html (the v2.3.1 text),
 *   chat-archive.fhir.org/stream/229447-V2/topic/hexadecimal.20data.html (§2.7.6, hex pairs).
 * - MSH-18 names the character set (HL7 table 0211): empty or `ASCII` is the default; `8859/1` …
 *   `8859/9`, `8859/15` are ISO 8859 parts; `UNICODE UTF-8` is UTF-8.
 *   Ref: hl7.eu/HL7v2x/v28/hl7v28tab0211.htm.
 */

/** Why a message could not be parsed: a stable code (for the ACK and metrics) and a message without content. */
export class Hl7ParseError extends Error {
  /**
   * `empty` (no bytes, or only line breaks), `too_large` (over `maxBytes`), `no_msh` (does not
   * start with an MSH segment), `bad_encoding_characters` (MSH-1/MSH-2 unusable), `bad_charset`
   * (MSH-18 unknown, or the bytes are not valid in it), `unsupported_version` (MSH-12 not 2.1–2.8),
   * `bad_segment` (a line that is not a segment), `multiple_messages` (a second MSH: a batch or two
   * messages in one frame).
   */
  readonly code: 'no_msh' | 'bad_encoding_characters' | 'unsupported_version' | 'empty' | 'too_large' | 'bad_charset' | 'bad_segment' | 'multiple_messages' | (string & {});
  constructor(code: Hl7ParseError['code'], message: string) {
    super(message);
    this.name = 'Hl7ParseError';
    this.code = code;
  }
}

/** The MSH fields ehrsync needs, as unescaped text ('' when absent). */
export interface Hl7Header {
  /** MSH-3.1 */
  sendingApplication: string;
  /** MSH-4.1 */
  sendingFacility: string;
  /** MSH-5.1 */
  receivingApplication: string;
  /** MSH-6.1 */
  receivingFacility: string;
  /** MSH-7 as sent (HL7 DTM, e.g. 20261206101530-0500) */
  dateTime: string;
  /** MSH-9.1, e.g. SIU */
  messageType: string;
  /** MSH-9.2, e.g. S12 */
  triggerEvent: string;
  /** MSH-9.3, may be '' */
  structure: string;
  /** MSH-10 */
  controlId: string;
  /** MSH-11.1 */
  processingId: string;
  /** MSH-12.1 */
  version: string;
  /** MSH-18 (its first repetition, first component), '' = ASCII */
  charset: string;
}

/** The delimiters a message declared in MSH-1 and MSH-2. */
export interface Hl7Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** The v2.7 truncation character, '' when MSH-2 has only four characters. */
  truncation: string;
}

/** The usual delimiters, `|^~\&`. */
export const DEFAULT_DELIMITERS: Readonly<Hl7Delimiters> = Object.freeze({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&', truncation: '' });

/** The size limit `parse` applies when the caller names none: far above any SIU or ADT message. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

/** HL7 versions this parser accepts: 2.1 to 2.8 with any minor release (2.3.1, 2.5.1, 2.8.2 …). */
const SUPPORTED_VERSION = /^2\.[1-8](\.\d{1,2})?$/;
/** A segment name: three uppercase letters or digits, the first a letter (Z-segments included). */
const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

/**
 * A character set named in MSH-18 → how to decode bytes in it. Node's `latin1` is true ISO 8859-1;
 * the other parts go through TextDecoder (WHATWG labels `iso-8859-N`; note that WHATWG maps the
 * `iso-8859-1` label to windows-1252, which is why part 1 does not use it).
 */
function decoderFor(charset: string): ((bytes: Buffer) => string) | null {
  const name = charset.trim().toUpperCase();
  if (name === '' || name === 'ASCII' || name === 'UNICODE UTF-8' || name === 'UTF-8' || name === 'ISO IR6') {
    // ASCII is a subset of UTF-8; senders that leave MSH-18 empty yet send non-ASCII almost always
    // send UTF-8, so both are read as UTF-8, strictly (invalid bytes are an error, not U+FFFD).
    return (bytes) => {
      try {
        return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        throw new Hl7ParseError('bad_charset', `the message is not valid UTF-8 (MSH-18 ${JSON.stringify(clip(charset)) || 'empty'})`);
      }
    };
  }
  if (name === '8859/1') return (bytes) => bytes.toString('latin1');
  const part = /^8859\/([2-9]|15)$/.exec(name);
  if (part) {
    const label = `iso-8859-${part[1]}`;
    return (bytes) => new TextDecoder(label).decode(bytes);
  }
  return null;
}

function clip(s: string): string {
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
}

const isDelimiterChar = (ch: string): boolean => {
  const c = ch.charCodeAt(0);
  // Printable ASCII, not a space, not a letter or digit: anything else would be read as data.
  return c > 0x20 && c < 0x7f && !/[A-Za-z0-9]/.test(ch);
};

/**
 * Reads MSH-1 and MSH-2 from the start of the MSH line. Throws `bad_encoding_characters` when they
 * cannot be delimiters: each must be a printable ASCII punctuation character, all distinct.
 */
function readDelimiters(mshLine: string): Hl7Delimiters {
  const field = mshLine.charAt(3);
  if (field === '' || !isDelimiterChar(field)) {
    throw new Hl7ParseError('bad_encoding_characters', 'MSH-1 (the field separator) must be one printable punctuation character');
  }
  const end = mshLine.indexOf(field, 4);
  const enc = end < 0 ? mshLine.slice(4) : mshLine.slice(4, end);
  if (enc.length !== 4 && enc.length !== 5) {
    throw new Hl7ParseError('bad_encoding_characters', `MSH-2 must have 4 encoding characters (5 with the v2.7 truncation character), not ${enc.length}`);
  }
  const chars = [field, ...enc];
  if (!chars.every(isDelimiterChar) || new Set(chars).size !== chars.length) {
    throw new Hl7ParseError('bad_encoding_characters', 'MSH-1 and MSH-2 must be distinct printable punctuation characters');
  }
  return { field, component: enc.charAt(0), repetition: enc.charAt(1), escape: enc.charAt(2), subcomponent: enc.charAt(3), truncation: enc.charAt(4) };
}

/**
 * Replaces escape sequences in one primitive value (already split on every delimiter, so no
 * sequence can span values). `hex` decodes the bytes of a \X..\ sequence in the message's charset.
 */
export function unescapeValue(value: string, d: Hl7Delimiters, hex: (bytes: Buffer) => string = (b) => b.toString('latin1')): string {
  const e = d.escape;
  if (value.indexOf(e) < 0) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const start = value.indexOf(e, i);
    if (start < 0) break;
    const end = value.indexOf(e, start + 1);
    if (end < 0) break; // an unterminated sequence is kept as sent
    out += value.slice(i, start);
    const body = value.slice(start + 1, end);
    out += decodeSequence(body, d, hex) ?? value.slice(start, end + 1);
    i = end + 1;
  }
  return out + value.slice(i);
}

function decodeSequence(body: string, d: Hl7Delimiters, hex: (bytes: Buffer) => string): string | null {
  switch (body) {
    case 'F': return d.field;
    case 'S': return d.component;
    case 'T': return d.subcomponent;
    case 'R': return d.repetition;
    case 'E': return d.escape;
    case 'P': return d.truncation === '' ? null : d.truncation;
    case '.br': return '\n';
  }
  if (body.length >= 3 && body.charAt(0) === 'X' && /^(?:[0-9A-Fa-f]{2})+$/.test(body.slice(1))) {
    return hex(Buffer.from(body.slice(1), 'hex'));
  }
  return null;
}

/** Escapes text for one primitive value: the inverse of `unescapeValue` for the delimiters (and CR/LF as \X0D\ \X0A\). */
export function escapeValue(text: string, d: Hl7Delimiters = DEFAULT_DELIMITERS): string {
  let out = '';
  for (const ch of text) {
    if (ch === d.escape) out += `${d.escape}E${d.escape}`;
    else if (ch === d.field) out += `${d.escape}F${d.escape}`;
    else if (ch === d.component) out += `${d.escape}S${d.escape}`;
    else if (ch === d.subcomponent) out += `${d.escape}T${d.escape}`;
    else if (ch === d.repetition) out += `${d.escape}R${d.escape}`;
    else if (d.truncation !== '' && ch === d.truncation) out += `${d.escape}P${d.escape}`;
    else if (ch === '\r') out += `${d.escape}X0D${d.escape}`;
    else if (ch === '\n') out += `${d.escape}X0A${d.escape}`;
    else out += ch;
  }
  return out;
}

/** One segment: its name and its fields as sent (escaped); reads split and unescape on demand. */
export class Hl7Segment {
  /** The segment ID, e.g. `PID`, `ZSC`. */
  readonly name: string;
  /** fields[n] is field n as sent (index 0 is the name); for MSH, [1] is MSH-1 and [2] MSH-2. */
  readonly #fields: readonly string[];
  readonly #d: Hl7Delimiters;
  readonly #hex: (bytes: Buffer) => string;

  /** @internal Built by `Hl7Message.parse`. */
  constructor(name: string, fields: readonly string[], delimiters: Hl7Delimiters, hex: (bytes: Buffer) => string) {
    this.name = name;
    this.#fields = fields;
    this.#d = delimiters;
    this.#hex = hex;
  }

  /**
   * Unescaped text of field n, component c, subcomponent s, repetition r (all 1-based, each
   * defaulting to 1, so `get(5)` is PID-5.1 of the first repetition, as HAPI's Terser reads
   * `PID-5`); '' when absent. MSH-1 is the field separator, MSH-2 the encoding characters (both
   * returned as sent). HL7's explicit null `""` is returned as the two characters `""`: see
   * `isNull`.
   */
  get(field: number, component = 1, subcomponent = 1, repetition = 1): string {
    const raw = this.#primitive(field, component, subcomponent, repetition);
    if (raw === undefined) return '';
    if (this.name === 'MSH' && (field === 1 || field === 2)) return raw;
    return unescapeValue(raw, this.#d, this.#hex);
  }

  /** How many repetitions field n has (0 when empty). */
  repetitions(field: number): number {
    const raw = this.raw(field);
    if (raw === '') return 0;
    if (this.name === 'MSH' && (field === 1 || field === 2)) return 1;
    return raw.split(this.#d.repetition).length;
  }

  /** Field n exactly as sent (still escaped, every repetition and component), '' when absent. */
  raw(field: number): string {
    if (!Number.isInteger(field) || field < 1) return '';
    return this.#fields[field] ?? '';
  }

  /** How many fields the segment has as sent (trailing empty fields included), not counting the name. */
  get fieldCount(): number {
    return this.#fields.length - 1;
  }

  /**
   * Whether the value is HL7's explicit null `""` — "delete what you have" in an update (e.g. an
   * A08 clearing a phone number), unlike an empty value, which means "not sent".
   */
  isNull(field: number, component = 1, subcomponent = 1, repetition = 1): boolean {
    return this.#primitive(field, component, subcomponent, repetition) === '""';
  }

  /**
   * Whether the sender marked the value truncated (v2.7 §2.5.5.2): it ends with the truncation
   * character declared in MSH-2 (a `\P\` escape is a literal one, not a mark). `get` keeps the
   * mark, as sent; false when MSH-2 declares no truncation character.
   */
  isTruncated(field: number, component = 1, subcomponent = 1, repetition = 1): boolean {
    const t = this.#d.truncation;
    if (t === '' || (this.name === 'MSH' && (field === 1 || field === 2))) return false;
    return this.#primitive(field, component, subcomponent, repetition)?.endsWith(t) ?? false;
  }

  /** The still-escaped primitive value at a position, or undefined when the position is absent. */
  #primitive(field: number, component: number, subcomponent: number, repetition: number): string | undefined {
    if (![field, component, subcomponent, repetition].every((n) => Number.isInteger(n) && n >= 1)) return undefined;
    const raw = this.#fields[field];
    if (raw === undefined) return undefined;
    if (this.name === 'MSH' && (field === 1 || field === 2)) {
      return component === 1 && subcomponent === 1 && repetition === 1 ? raw : undefined;
    }
    const rep = raw.split(this.#d.repetition)[repetition - 1];
    if (rep === undefined) return undefined;
    const comp = rep.split(this.#d.component)[component - 1];
    if (comp === undefined) return undefined;
    return comp.split(this.#d.subcomponent)[subcomponent - 1];
  }
}

/** One parsed HL7 v2 message. */
export class Hl7Message {
  /** MSH fields, unescaped. */
  readonly header: Hl7Header;
  /** Every segment in order, MSH first; Z-segments included like any other. */
  readonly segments: readonly Hl7Segment[];
  /** The delimiters from MSH-1/MSH-2 (an ACK answers with the same). */
  readonly delimiters: Readonly<Hl7Delimiters>;

  private constructor(segments: Hl7Segment[], delimiters: Hl7Delimiters) {
    this.segments = Object.freeze(segments);
    this.delimiters = Object.freeze({ ...delimiters });
    const msh = segments[0] as Hl7Segment;
    this.header = Object.freeze({
      sendingApplication: msh.get(3),
      sendingFacility: msh.get(4),
      receivingApplication: msh.get(5),
      receivingFacility: msh.get(6),
      dateTime: msh.get(7),
      messageType: msh.get(9, 1),
      triggerEvent: msh.get(9, 2),
      structure: msh.get(9, 3),
      controlId: msh.get(10),
      processingId: msh.get(11),
      version: msh.get(12),
      charset: msh.get(18),
    });
  }

  /**
   * Parses one message (segments separated by \r; also accept \n and \r\n). Bytes are decoded per
   * MSH-18 (ASCII/UTF-8 default `UNICODE UTF-8`; `8859/1` → latin1); a string is taken as already
   * decoded. Throws Hl7ParseError.
   */
  static parse(raw: Buffer | string, options: { maxBytes?: number } = {}): Hl7Message {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    // A NaN or negative limit would silently disable the guard (every comparison false).
    if (!(maxBytes > 0)) throw new RangeError('maxBytes must be a positive number');
    const size = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.length;
    if (size === 0) throw new Hl7ParseError('empty', 'the message is empty');
    if (size > maxBytes) throw new Hl7ParseError('too_large', `the message has ${size} bytes, over the limit of ${maxBytes}`);

    let text: string;
    let hex: (bytes: Buffer) => string;
    if (typeof raw === 'string') {
      text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      // A \X..\ sequence names bytes; in an already decoded string, read them as UTF-8 (ASCII and
      // UTF-8 being the default character set).
      hex = utf8OrLatin1;
    } else {
      ({ text, hex } = decodeBytes(raw));
    }
    return Hl7Message.#parseText(text, hex);
  }

  /** The first segment with this name, if any. */
  segment(name: string): Hl7Segment | undefined {
    return this.segments.find((s) => s.name === name);
  }

  /** Every segment with this name, in order. */
  all(name: string): Hl7Segment[] {
    return this.segments.filter((s) => s.name === name);
  }

  static #parseText(text: string, hex: (bytes: Buffer) => string): Hl7Message {
    const lines = text.split(/\r\n|\r|\n/);
    const first = lines.findIndex((l) => l.trim() !== '');
    if (first < 0) throw new Hl7ParseError('empty', 'the message has no segments');
    const msh = lines[first] as string;
    if (!msh.startsWith('MSH')) throw new Hl7ParseError('no_msh', 'the message does not start with an MSH segment');
    const d = readDelimiters(msh);

    const segments: Hl7Segment[] = [];
    for (let i = first; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.trim() === '') continue; // blank lines (CRLF CRLF, a trailing newline) separate nothing
      const name = line.slice(0, 3);
      if (!SEGMENT_NAME.test(name) || (line.length > 3 && line.charAt(3) !== d.field)) {
        throw new Hl7ParseError('bad_segment', `line ${i + 1} is not a segment (a segment starts with three uppercase letters or digits and the field separator)`);
      }
      if (name === 'MSH' && segments.length > 0) {
        throw new Hl7ParseError('multiple_messages', `line ${i + 1} starts a second message (MSH): send one message per frame`);
      }
      let fields: string[];
      if (name === 'MSH') {
        // MSH-1 is the separator itself and MSH-2 is not split: the first split piece after the
        // name is MSH-2, so MSH-n is piece n-1 and the separator is spliced in as field 1.
        const pieces = line.split(d.field);
        fields = [name, d.field, ...pieces.slice(1)];
      } else {
        fields = line.split(d.field);
      }
      segments.push(new Hl7Segment(name, fields, d, hex));
    }

    const message = new Hl7Message(segments, d);
    const version = message.header.version;
    if (!SUPPORTED_VERSION.test(version)) {
      throw new Hl7ParseError('unsupported_version', version === '' ? 'MSH-12 (version) is empty' : `HL7 version ${JSON.stringify(clip(version))} is not supported (2.1 to 2.8)`);
    }
    return message;
  }
}

function utf8OrLatin1(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/**
 * Decodes a message's bytes per its MSH-18. The delimiters and MSH-18 are ASCII in every
 * supported charset, so the MSH line is first read as latin1 (one char per byte) to find MSH-18.
 */
function decodeBytes(bytes: Buffer): { text: string; hex: (bytes: Buffer) => string } {
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0; // UTF-8 byte order mark
  // The first line that is not blank must be MSH (as in the string path, which skips blank lines).
  let first = bom;
  while (first < bytes.length && (bytes[first] === 0x0d || bytes[first] === 0x0a || bytes[first] === 0x20 || bytes[first] === 0x09)) first++;
  if (first >= bytes.length) throw new Hl7ParseError('empty', 'the message has no segments');
  let start = first;
  while (start > bom && bytes[start - 1] !== 0x0d && bytes[start - 1] !== 0x0a) start--;
  const body = bytes.subarray(start);
  if (body.subarray(0, 3).toString('latin1') !== 'MSH') throw new Hl7ParseError('no_msh', 'the message does not start with an MSH segment');

  let lineEnd = body.findIndex((b) => b === 0x0d || b === 0x0a);
  if (lineEnd < 0) lineEnd = body.length;
  const mshLine = body.subarray(0, lineEnd).toString('latin1');
  const d = readDelimiters(mshLine);
  // MSH-18 is field 18: piece 17 once MSH-1 (the separator itself) is accounted for. Its first
  // repetition, first component names the character set of the whole message.
  const msh18 = (mshLine.split(d.field)[17] ?? '').split(d.repetition)[0]?.split(d.component)[0] ?? '';
  const charset = unescapeValue(msh18, d);
  const decode = decoderFor(charset);
  if (!decode) throw new Hl7ParseError('bad_charset', `character set ${JSON.stringify(clip(charset))} (MSH-18) is not supported`);
  return { text: decode(body), hex: (b) => decodeHex(decode, b) };
}

/** A \X..\ sequence's bytes in the message's charset; bytes invalid there fall back to latin1. */
function decodeHex(decode: (bytes: Buffer) => string, bytes: Buffer): string {
  try {
    return decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/**
 * Encodes a message's text (e.g. an ACK) for the wire in the character set its MSH-18 names:
 * UTF-8 for '', `ASCII` and `UNICODE UTF-8`; ISO 8859-1 for `8859/1`. Node has no encoder for the
 * other ISO 8859 parts, so for them (and for characters 8859-1 cannot hold) non-ASCII characters
 * become `?` — an ACK carries only codes, locations and reasons, which are ASCII.
 */
export function encodeText(text: string, charset: string): Buffer {
  const name = charset.trim().toUpperCase();
  if (decoderFor(name) !== null && !name.startsWith('8859/')) return Buffer.from(text, 'utf8');
  const limit = name === '8859/1' ? 0xff : 0x7f;
  let out = '';
  for (const ch of text) out += ch.codePointAt(0)! <= limit ? ch : '?';
  return Buffer.from(out, 'latin1');
}
