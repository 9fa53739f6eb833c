/**
 * @module demo-ehr/hl7-feed — the demo EHR's HL7 v2 interface: each appointment and patient change
 * becomes an SIU (S12 booked, S13 moved, S14 modified, S15 cancelled, S26 no-show, S17 deleted) or
 * ADT (A28 new patient, A08 patient edited) message, kept in an outbox in the demo EHR's own
 * database (written in the change's transaction, so a change is never lost, not even across a
 * restart), and sent in order over one connection, each waiting for its ACK; a send that fails is
 * resent on a new connection. The wire (MLLP) and the ER7 escaping are injected: the demo EHR
 * imports only domain (eslint.config.js, STAGES), so the `ehrsync demo` command hands it
 * connectors/hl7v2's `escapeValue` and MLLP client. Logs carry ids and codes, never message content.
 */
import { randomBytes } from 'node:crypto';
import { zoneOffsetMs } from '../domain/clock.js';
import { DEMO_MRN_SYSTEM } from '../domain/demo-ehr-profile.js';
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import type { StatusMap } from '../domain/status.js';
import type { DemoClinic } from './clinic.js';
import type { DemoStore, FhirResource, StoreWrite } from './store.js';

/**
 * SCH-25 (filler status code) the feed sends for each FHIR status the demo EHR stores: HL7 table
 * 0278's code where it has one, and `Arrived` for a checked-in patient, a local code (table 0278
 * has none for it, so sites add one). A status not listed goes out as it is stored.
 */
export const DEMO_HL7_FILLER_STATUS: Readonly<Record<string, string>> = {
  proposed: 'Pending',
  pending: 'Pending',
  booked: 'Booked',
  arrived: 'Arrived',
  'checked-in': 'Arrived',
  fulfilled: 'Complete',
  cancelled: 'Cancelled',
  noshow: 'Noshow',
  waitlist: 'Waitlist',
};

/**
 * The `statusMap` an hl7v2 connection fed by the demo EHR carries in its config: its local code.
 * (The table 0278 codes are the hl7v2 connector's own.)
 */
export const DEMO_HL7_STATUS_MAP: StatusMap = { Arrived: 'checked-in' };

/** What the feed's messages say about their sender, and how their values are escaped. */
export interface DemoHl7FeedOptions {
  /** MSH-3.1, the sending application (what the hl7v2 connection's `sendingApplication` matches). */
  sendingApplication: string;
  /** MSH-4.1, the sending facility. */
  sendingFacility: string;
  /** MSH-5.1. Default `EHRSYNC`. */
  receivingApplication?: string;
  /**
   * Escapes one primitive value for ER7 text with the usual delimiters `|^~\&`
   * (connectors/hl7v2/message.ts's `escapeValue`).
   */
  escape: (value: string) => string;
  /** Told when a change could not be turned into a message (ids only). Default: silent. */
  logger?: Logger;
}

/** The answer to one message, as the link read it from the ACK. */
export interface Hl7Ack {
  /** MSA-1: `AA`, `AE`, `AR` (or `CA`, `CE`, `CR`). */
  code: string;
  /** MSA-2: the MSH-10 of the message it answers. */
  controlId: string;
}

/** One open connection to the receiver. */
export interface Hl7Link {
  /** Sends one message (ER7 text, segments ended by CR) and resolves with its ACK; rejects when the connection failed. */
  send(message: string): Promise<Hl7Ack>;
  /** Closes the connection; a send in flight rejects. */
  close(): void;
}

/** How the feed starts sending. */
export interface DemoHl7FeedStart {
  /** Opens a connection to the receiver (called again after a failure). */
  connect: () => Promise<Hl7Link>;
  /** Where the feed reports outages, refusals and recoveries (ids and codes only). Default: silent. */
  logger?: Logger;
  /** Longest pause between two attempts after failures, ms. Default 5000 (the first pause is 100). */
  maxRetryMs?: number;
}

/** A message waiting in the outbox. */
interface Outgoing {
  seq: number;
  control_id: string;
  message_type: string;
  message: string;
}

/**
 * A value's control characters other than CR and LF (which escape as `\X0D\`, `\X0A\`) become
 * spaces: MLLP cannot frame a message holding its block characters (0x0B, 0x1C).
 */
function withoutControls(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    out += (code < 0x20 && ch !== '\r' && ch !== '\n') || code === 0x7f ? ' ' : ch;
  }
  return out;
}

/** HL7 table 0001 for FHIR's administrative gender. */
const SEX: Readonly<Record<string, string>> = { female: 'F', male: 'M', other: 'O', unknown: 'U' };

type Participant = { actor?: { reference?: string; display?: string } };
type Telecom = { system?: string; use?: string; value?: string };
type Address = { use?: string; line?: string[]; city?: string; state?: string; postalCode?: string };
type HumanName = { use?: string; given?: string[]; family?: string; prefix?: string[]; suffix?: string[] };

/**
 * The demo EHR's HL7 v2 feed. Created with the EHR (`startDemoEhr({ hl7Feed })`), it records every
 * change into its outbox from then on; `start()` begins delivering them.
 */
export class DemoHl7Feed {
  private readonly store: DemoStore;
  private readonly zone: string;
  private readonly log: Logger;
  private readonly tag: string;
  private readonly unsubscribe: () => void;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private link: Hl7Link | null = null;
  private waiter: (() => void) | null = null;
  private readonly pauses = new Set<() => void>();
  private sentCount = 0;
  private setAsideCount = 0;

  constructor(
    clinic: DemoClinic,
    private readonly options: DemoHl7FeedOptions,
  ) {
    this.store = clinic.store;
    this.zone = clinic.options.timezone;
    this.log = options.logger ?? silentLogger;
    this.store.db.exec('CREATE TABLE IF NOT EXISTS hl7_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, control_id TEXT NOT NULL, message_type TEXT NOT NULL, message TEXT NOT NULL)');
    // MSH-10 is how ehrsync recognises a re-send: ids must never repeat, not even after this
    // directory is deleted while ehrsync keeps its message log, hence a random tag per outbox.
    let tag = this.store.getMeta('hl7:tag');
    if (tag === null) {
      tag = `D${randomBytes(4).readUInt32BE(0).toString(36).toUpperCase()}`;
      this.store.setMeta('hl7:tag', tag);
    }
    this.tag = tag;
    this.unsubscribe = this.store.onWrite((w) => this.record(w));
  }

  /** Messages recorded but not yet acknowledged. */
  pending(): number {
    return (this.store.db.prepare('SELECT COUNT(*) AS n FROM hl7_outbox').get() as { n: number }).n;
  }

  /** Messages acknowledged with AA since `start()`, and those refused with AE (set aside). */
  get counts(): { sent: number; setAside: number } {
    return { sent: this.sentCount, setAside: this.setAsideCount };
  }

  /** Starts delivering the outbox (what is left from an earlier run first). */
  start(how: DemoHl7FeedStart): void {
    if (this.loop !== null) throw new Error('the HL7 feed is already started');
    if (this.stopped) throw new Error('the HL7 feed is stopped');
    this.loop = this.run(how).catch((err: unknown) => {
      // Only a bug lands here (send failures are retried): say so, by code, and stop sending.
      (how.logger ?? silentLogger).error({ error: err instanceof Error ? err.name : 'error' }, 'demo EHR HL7 feed stopped');
    });
  }

  /** Stops recording and sending; a message in flight stays in the outbox and is resent by the next run. */
  async stop(): Promise<void> {
    if (this.stopped) return this.loop ?? undefined;
    this.stopped = true;
    this.unsubscribe();
    this.link?.close();
    this.wake();
    for (const p of [...this.pauses]) p();
    await this.loop;
  }

  // -------------------------------------------------------------------------------------------
  // Recording: inside the change's transaction

  private record(w: StoreWrite): void {
    let built: { type: string; segments: string[] } | null;
    try {
      built = w.type === 'Appointment' ? this.siu(w) : w.type === 'Patient' ? this.adt(w) : null;
    } catch (err) {
      // The EHR's change goes ahead; the feed says which record it could not describe.
      this.log.warn({ resource_type: w.type, id: w.id, error: err instanceof Error ? err.name : 'error' }, 'demo EHR HL7 feed: no message for a change');
      return;
    }
    if (built === null) return;
    const n = Number(this.store.getMeta('hl7:next') ?? '1');
    this.store.setMeta('hl7:next', String(n + 1));
    const controlId = `${this.tag}${n}`;
    const msh = this.msh(built.type, controlId, Date.parse(w.at));
    const text = `${[msh, ...built.segments].join('\r')}\r`;
    this.store.db.prepare('INSERT INTO hl7_outbox (control_id, message_type, message) VALUES (?, ?, ?)').run(controlId, built.type.split('^').slice(0, 2).join('^'), text);
    // After the change's transaction: a rolled-back change leaves nothing to send.
    queueMicrotask(() => this.wake());
  }

  /** One primitive value, escaped. */
  private v(value: unknown): string {
    if (value === undefined || value === null) return '';
    return this.options.escape(withoutControls(String(value)));
  }

  /** Components of one field, escaped, trailing empty ones dropped. */
  private c(...components: unknown[]): string {
    const out = components.map((x) => this.v(x));
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    return out.join('^');
  }

  /** A segment from already escaped fields (1-based: `fields[0]` is field 1), trailing empty fields dropped. */
  private seg(name: string, fields: string[]): string {
    const out = [...fields];
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    return [name, ...out].join('|');
  }

  private msh(type: string, controlId: string, atMs: number): string {
    const o = this.options;
    // MSH-2 … MSH-18: encoding characters, sender, receiver, time, type, control id, processing
    // id (P), version, and the character set the text goes out in.
    return ['MSH', '^~\\&', this.v(o.sendingApplication), this.v(o.sendingFacility), this.v(o.receivingApplication ?? 'EHRSYNC'), this.v(o.sendingFacility), this.ts(atMs, true), '', type, this.v(controlId), 'P', '2.5.1', '', '', '', '', '', 'UNICODE UTF-8'].join('|');
  }

  /** An HL7 DTM in the clinic's zone with its offset: `YYYYMMDDHHMMSS[.SSS]±ZZZZ`. */
  private ts(ms: number, millis = false): string {
    const offset = zoneOffsetMs(ms, this.zone);
    const wall = new Date(ms + offset).toISOString();
    const sign = offset < 0 ? '-' : '+';
    const abs = Math.abs(offset) / 60_000;
    const zz = `${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
    return `${wall.slice(0, 19).replace(/[-T:]/g, '')}${millis ? wall.slice(19, 23) : ''}${sign}${zz}`;
  }

  private resource(type: 'Patient' | 'Practitioner', id: string): FhirResource | null {
    const got = this.store.get(type, id);
    return got && got !== 'gone' ? got.resource : null;
  }

  /** The SIU of an appointment change; its trigger from what changed. */
  private siu(w: StoreWrite): { type: string; segments: string[] } {
    const a = (w.after ?? w.before) as FhirResource;
    const trigger = siuTrigger(w.before, w.after);
    const action = trigger === 'S12' ? 'A' : 'U';
    const parts = Array.isArray(a.participant) ? (a.participant as Participant[]) : [];
    const refs = (t: string) => parts.filter((p) => (p.actor?.reference ?? '').startsWith(`${t}/`)).map((p) => ({ id: (p.actor?.reference as string).slice(t.length + 1), display: p.actor?.display }));
    const startMs = typeof a.start === 'string' ? Date.parse(a.start) : NaN;
    const endMs = typeof a.end === 'string' ? Date.parse(a.end) : NaN;
    const minutes = typeof a.minutesDuration === 'number' ? a.minutesDuration : Number.isNaN(startMs) || Number.isNaN(endMs) ? null : Math.round((endMs - startMs) / 60_000);
    const start = Number.isNaN(startMs) ? '' : this.ts(startMs);
    const end = Number.isNaN(startMs) || minutes === null ? '' : this.ts(startMs + minutes * 60_000);
    const status = typeof a.status === 'string' ? (DEMO_HL7_FILLER_STATUS[a.status] ?? a.status) : '';
    const type = a.appointmentType as { coding?: { code?: string }[]; text?: string } | undefined;
    const typeCode = type?.coding?.[0]?.code ?? type?.text ?? '';

    const sch = new Array<string>(25).fill('');
    sch[1] = this.c(a.id, this.options.sendingApplication); // SCH-2 filler appointment ID
    sch[8] = minutes === null ? '' : this.v(minutes); // SCH-9 duration
    sch[9] = minutes === null ? '' : 'MIN'; // SCH-10 its units
    sch[10] = this.c('', '', '', start, end); // SCH-11.4 start, SCH-11.5 end
    sch[24] = this.c(status); // SCH-25 filler status code (table 0278)
    const segments = [this.seg('SCH', sch)];
    const patient = refs('Patient')[0];
    if (patient) segments.push(this.pid(this.resource('Patient', patient.id), patient.id, patient.display));
    segments.push(this.seg('RGS', ['1', action]));
    if (typeCode !== '') segments.push(this.seg('AIS', ['1', action, this.c(typeCode, type?.text ?? typeCode), start, '', '', minutes === null ? '' : this.v(minutes), minutes === null ? '' : 'MIN']));
    refs('Location').forEach((l, i) => segments.push(this.seg('AIL', [String(i + 1), action, this.c(l.display || l.id)])));
    refs('Practitioner').forEach((p, i) => {
      const n = (this.resource('Practitioner', p.id)?.name as HumanName[] | undefined)?.[0];
      // XCN: 1 id, 2 family, 3 given, 4 middle, 5 suffix, 6 prefix.
      const xcn = n ? this.c(p.id, n.family, n.given?.[0], n.given?.slice(1).join(' '), n.suffix?.join(' '), n.prefix?.join(' ')) : this.c(p.id, p.display);
      segments.push(this.seg('AIP', [String(i + 1), action, xcn, this.c('PHYS', 'Physician')]));
    });
    return { type: `SIU^${trigger}^SIU_S12`, segments };
  }

  /** The ADT of a patient change: A28 for a new patient, A08 for an edit; none for a deletion. */
  private adt(w: StoreWrite): { type: string; segments: string[] } | null {
    if (w.after === null) return null;
    const trigger = w.before === null ? 'A28' : 'A08';
    return {
      type: trigger === 'A28' ? 'ADT^A28^ADT_A05' : 'ADT^A08^ADT_A01',
      segments: [this.seg('EVN', [trigger, this.ts(Date.parse(w.at))]), this.pid(w.after, w.id, undefined), this.seg('PV1', ['1', 'N'])],
    };
  }

  /**
   * The PID of a patient: PID-3 its MRN (typed `MR`) and the EHR's own id (typed `PI`, the key
   * ehrsync keeps the patient under), PID-5 name, PID-7 birth date, PID-8 sex, PID-11 home
   * address, PID-13 phones and email. A patient the store no longer has: its id and display name.
   */
  private pid(p: FhirResource | null, id: string, display: string | undefined): string {
    const authority = this.options.sendingApplication;
    const pi = this.c(id, '', '', authority, 'PI');
    if (p === null) {
      const words = (display ?? '').trim().split(/\s+/);
      return this.seg('PID', ['1', '', pi, '', this.c(words.length > 1 ? words.pop() : '', words.join(' '))]);
    }
    const ids = (p.identifier as { system?: string; value?: string; type?: { coding?: { code?: string }[] } }[] | undefined) ?? [];
    const mrn = ids.find((i) => i.system === DEMO_MRN_SYSTEM)?.value ?? ids.find((i) => i.type?.coding?.some((c) => c.code === 'MR'))?.value;
    const names = (p.name as HumanName[] | undefined) ?? [];
    const n = names.find((x) => x.use === 'official') ?? names[0];
    const telecom = (p.telecom as Telecom[] | undefined) ?? [];
    const phones = telecom.filter((t) => t.system === 'phone' && t.value).map((t) => this.c(t.value, t.use === 'work' ? 'WPN' : 'PRN', t.use === 'mobile' ? 'CP' : 'PH'));
    const emails = telecom.filter((t) => t.system === 'email' && t.value).map((t) => this.c('', 'NET', 'Internet', t.value));
    const addr = ((p.address as Address[] | undefined) ?? []).find((x) => x.use === 'home') ?? (p.address as Address[] | undefined)?.[0];
    const pidFields = new Array<string>(13).fill('');
    pidFields[0] = '1';
    pidFields[2] = [...(mrn ? [this.c(mrn, '', '', authority, 'MR')] : []), pi].join('~'); // PID-3
    pidFields[4] = n ? this.c(n.family, n.given?.[0], n.given?.slice(1).join(' '), '', '', '', 'L') : ''; // PID-5 (XPN-7 L: legal)
    pidFields[6] = typeof p.birthDate === 'string' ? this.v(p.birthDate.replace(/-/g, '')) : ''; // PID-7
    pidFields[7] = typeof p.gender === 'string' ? this.v(SEX[p.gender] ?? 'U') : ''; // PID-8
    pidFields[10] = addr ? this.c(addr.line?.[0], addr.line?.[1], addr.city, addr.state, addr.postalCode, '', 'H') : ''; // PID-11
    pidFields[12] = [...phones, ...emails].join('~'); // PID-13
    return this.seg('PID', pidFields);
  }

  // -------------------------------------------------------------------------------------------
  // Sending: in order, one message at a time, each until its ACK

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private oldest(): Outgoing | null {
    return (this.store.db.prepare('SELECT seq, control_id, message_type, message FROM hl7_outbox ORDER BY seq LIMIT 1').get() as Outgoing | undefined) ?? null;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.pauses.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.pauses.add(done);
    });
  }

  private async run(how: DemoHl7FeedStart): Promise<void> {
    const log = how.logger ?? silentLogger;
    const maxRetryMs = how.maxRetryMs ?? 5000;
    let failures = 0;
    const failed = async (fields: Record<string, unknown>, message: string): Promise<void> => {
      failures += 1;
      if (failures === 1) log.warn(fields, message);
      await this.pause(Math.min(maxRetryMs, 100 * 2 ** (failures - 1)));
    };
    try {
      while (!this.stopped) {
        const next = this.oldest();
        if (next === null) {
          await new Promise<void>((resolve) => (this.waiter = resolve));
          continue;
        }
        const ids = { control_id: next.control_id, message_type: next.message_type };
        // A connection kept from an earlier message may have been closed by the receiver since
        // (idle timeout): its failure is no outage, the message goes again at once on a new one.
        const reused = this.link !== null;
        let ack: Hl7Ack;
        try {
          this.link ??= await how.connect();
          ack = await this.link.send(next.message);
        } catch (err) {
          this.link?.close();
          this.link = null;
          if (this.stopped) break;
          const error = (err as { code?: unknown }).code ?? (err instanceof Error ? err.name : 'error');
          if (!reused) await failed({ ...ids, error }, 'demo EHR HL7 feed: no ACK; resending on a new connection until one comes');
          continue;
        }
        if (ack.controlId !== next.control_id) {
          // Answers no longer match messages: start over on a new connection.
          this.link.close();
          this.link = null;
          await failed({ ...ids, ack_control_id: ack.controlId.slice(0, 40) }, 'demo EHR HL7 feed: an ACK for another message; resending on a new connection');
          continue;
        }
        const code = ack.code.toUpperCase();
        if (code === 'AA' || code === 'CA' || code === 'AE' || code === 'CE') {
          this.store.db.prepare('DELETE FROM hl7_outbox WHERE seq = ?').run(next.seq);
          if (failures > 0) log.info({ ...ids, failures }, 'demo EHR HL7 feed: delivering again');
          failures = 0;
          if (code === 'AA' || code === 'CA') this.sentCount += 1;
          else {
            // An application error is the receiver's final word on this message (it is logged and
            // set aside there, and a resend gets the same answer): the feed goes on.
            this.setAsideCount += 1;
            log.warn({ ...ids, ack: code }, 'demo EHR HL7 feed: message refused with an error (see ehrsync\'s quarantine); going on');
          }
          continue;
        }
        // AR (no connection takes this sender, disabled …) or an unknown code: the receiver will not
        // take it now; the feed keeps its order and tries again.
        await failed({ ...ids, ack: code.slice(0, 4) }, 'demo EHR HL7 feed: message rejected; retrying');
      }
    } finally {
      this.link?.close();
      this.link = null;
    }
  }
}

/** The SIU trigger of an appointment change. */
function siuTrigger(before: FhirResource | null, after: FhirResource | null): 'S12' | 'S13' | 'S14' | 'S15' | 'S17' | 'S26' {
  if (after === null) return 'S17';
  if (before === null) return 'S12';
  if (after.status !== before.status && after.status === 'cancelled') return 'S15';
  if (after.status !== before.status && after.status === 'noshow') return 'S26';
  if (after.start !== before.start || after.end !== before.end || after.minutesDuration !== before.minutesDuration) return 'S13';
  return 'S14';
}
