/**
 * @module connectors/hl7v2/mapping — pure mapping of parsed HL7 v2 messages (SIU scheduling, ADT
 * patient) to ehrsync's candidates: the same `Candidate<AppointmentRecord>` / `Candidate<PatientRecord>`
 * the FHIR connector hands over, so detection's validation (quarantine) and the planner apply
 * unchanged. No I/O, no clock, no logging; errors carry a code and field names, never message content.
 *
 * What the field positions rely on (HL7 v2.5.1 unless noted; v2.3–v2.4 differ only where said):
 * - SCH (ch. 10; hexdocs.pm/hl7v2/HL7v2.Segment.SCH, saga-it.com/docs/hl7/segments/sch, the v2.3
 *   chapter 10 text): 1 placer appointment ID (EI), 2 filler appointment ID (EI), 7 appointment reason
 *   (CE), 8 appointment type (CE, table 0277: Normal, Tentative, Complete — how firm the booking is,
 *   not the kind of visit, so never read as `appointment_type`), 9 appointment duration (NM), 10 its
 *   units (CE), 11 appointment timing quantity (TQ; "B", backward compatible, in v2.5), 25 filler
 *   status code (CE, table 0278).
 * - TQ (v2.3 ch. 4.4, the data type; hexdocs.pm/hl7v2/HL7v2.Type.TQ): 3 duration (ST: `S<n>` seconds,
 *   `M<n>` minutes, `H<n>` hours, `D<n>` days, `W<n>` weeks, `L<n>` months, `X<n>` times, `INDEF`),
 *   4 start date/time (TS), 5 end date/time (TS).
 * - TQ1 (v2.5 ch. 4.5.4; hl7.eu/HL7v2x/v251/hl7v251segmTQ1.htm): 6 service duration (CQ: quantity ^
 *   units), 7 start date/time (TS), 8 end date/time (TS).
 * - AIS (ch. 10.6.4; integrationsoup.com/hl7-reference/segments/ais): 2 segment action code (table
 *   0206), 3 universal service identifier (CE), 4 start date/time, 7 duration (NM), 8 duration units.
 * - AIG (usnistgov v2+ AIG; hl7.eu/refactored/segAIG.html): 3 resource ID (CE), 4 resource type (CE,
 *   required, no HL7 table: sites send `EQUIP^Equipment`, `PROV^Provider` …; AIG is meant for
 *   "general kinds of resources, such as equipment"), 8 start, 11 duration, 12 units.
 * - AIL (caristix v2.3.1 AIL): 3 location resource ID (PL), 6 start, 9 duration, 10 units.
 * - AIP (integrationsoup.com/hl7-reference/segments/aip): 3 personnel resource ID (XCN, repeating),
 *   4 resource type, 6 start, 9 duration, 10 units.
 * - PID (ch. 3): 3 patient identifier list (CX, repeating), 5 patient name (XPN), 7 date/time of
 *   birth (TS), 8 administrative sex (table 0001), 11 address (XAD), 13 home phone (XTN, repeating),
 *   14 business phone (XTN). PV1-19 visit number (CX). MRG-1 prior patient identifier list (CX):
 *   in A40 "the incorrect source identifier (MRG-1) is to be merged with the correct target
 *   identifier of the same identifier type code in PID-3" (hl7.eu/refactored/msgADT_A39.html).
 * - CX (v2.3 §2.8.10; hl7.eu/refactored/dtCX.html): 1 ID, 4 assigning authority (HD: namespace &
 *   universal ID & type), 5 identifier type code (table 0203: MR medical record number, PI patient
 *   internal identifier, …).
 * - XPN: 1 family name (FN; its 1st subcomponent the surname), 2 given, 3 middle, 7 name type (L legal).
 * - XCN (v2.3 §2.8.46): 1 ID, 2 family, 3 given, 4 middle, 5 suffix, 6 prefix, 9 assigning authority,
 *   13 identifier type code.
 * - XTN (v2.3 §2.8.49; hl7.eu/refactored/dtXTN.html): 1 telephone number (formatted, deprecated),
 *   2 use code (table 0201: PRN primary residence, WPN work, NET network/email, EMR emergency
 *   number — a contact's, not the patient's …), 3 equipment type
 *   (table 0202: PH telephone, CP cellular phone, FX fax, BP beeper, Internet), 4 communication
 *   (email) address, 5 country, 6 area/city, 7 local number, 8 extension, 12 unformatted number.
 * - XAD: 1 street address (SAD; 1st subcomponent the street line), 2 other designation, 3 city,
 *   4 state, 5 zip, 7 address type (H home). PL: 1 point of care, 4 facility (HD), 9 description.
 * - Table 0278 filler statuses: status-map.ts. Table 0206 segment action codes: A add, D delete,
 *   U update, X no change. DTM: hl7-time.ts.
 * - A real SIU as Epic documents it (open.epic.com "Outgoing Appointment Scheduling Interface",
 *   v2.3): start in SCH-11.4 with the duration in SCH-9/SCH-10 (`30^MIN`), SCH-11.3 empty.
 */
import type { AppointmentRecord, Candidate, PatientRecord } from '../../domain/records.js';
import type { StatusMap } from '../../domain/status.js';
import { NORMALIZED_STATUSES, normalizeStatus } from '../../domain/status.js';
import type { ProviderInfo } from '../connector.js';
import { isTimeZone } from '../../domain/clock.js';
import { hl7DateTimeToIso, hl7DateToIso } from './hl7-time.js';
import type { Hl7Message, Hl7Segment } from './message.js';

/**
 * Where each record field comes from in a message, for the quarantine: a reason such as "datetime
 * is not an ISO 8601 date-time" then also names the HL7 field an interface team can look at.
 */
export const HL7_SOURCE_FIELDS: Readonly<Record<string, string>> = Object.freeze({
  ehr_appointment_id: 'SCH-2, else SCH-1',
  patient_mrn: 'PID-3',
  patient_ehr_id: 'PID-3',
  patient_name: 'PID-5',
  datetime: 'SCH-11.4, TQ1-7 or AIS-4, an HL7 DTM',
  duration: 'SCH-9/SCH-10, TQ1-6 or AIS-7/AIS-8',
  location: 'AIL-3',
  status: 'SCH-25',
  provider_ehr_id: 'AIP-3, else AIG-3',
  provider_name: 'AIP-3, else AIG-3',
  secondary_provider_ehr_id: 'the second AIP-3',
  appointment_type: 'AIS-3, else SCH-7',
  ehr_patient_id: 'PID-3 (its PI, else the MRN)',
  mrn: 'PID-3',
  first_name: 'PID-5.2',
  last_name: 'PID-5.1',
  dob: 'PID-7',
  sex: 'PID-8',
  phone: 'PID-13',
  cell_phone: 'PID-13',
  email: 'PID-13',
  address_street: 'PID-11',
  address_line2: 'PID-11',
  address_city: 'PID-11',
  address_state: 'PID-11',
  address_zip: 'PID-11',
});

/** SIU trigger events ehrsync maps to an appointment. */
export const SIU_TRIGGERS = ['S12', 'S13', 'S14', 'S15', 'S16', 'S17', 'S26'] as const;
/** A supported SIU trigger: S12 new, S13 rescheduled, S14 modified, S15 cancelled, S16 discontinued, S17 deleted, S26 no-show. */
export type SiuTrigger = (typeof SIU_TRIGGERS)[number];
/** ADT trigger events ehrsync maps to a patient: A04 register, A08 update, A28 add person, A31 update person. */
export const ADT_PATIENT_TRIGGERS = ['A04', 'A08', 'A28', 'A31'] as const;
/** A supported ADT patient trigger. */
export type AdtPatientTrigger = (typeof ADT_PATIENT_TRIGGERS)[number];

/** What the mapping needs to know about the connection. */
export interface Hl7MappingOptions {
  /**
   * What marks the MRN among PID-3's identifiers: an assigning authority (CX-4, its namespace ID or
   * universal ID) or an identifier type code (CX-5), matched case-insensitively. Default: the
   * identifier typed `MR`, else the first. When set and nothing matches, the MRN is absent and
   * validation quarantines the record (as the FHIR connector does with `mrnSystem`).
   */
  mrnSystem?: string | null;
  /** The connection's IANA zone: a time without an offset is wall-clock time there; appointments carry it as `timezone`. */
  timezone: string;
  /**
   * The connection's effective status map — the same one the sync normalizes with: build it with
   * `connectionStatusMap` (registry.ts; the default map, table 0278, the config's and the
   * connection's codes). Used only to judge SCH-25 against an outcome trigger (`siuStatus`).
   */
  statusMap: StatusMap;
}

/** Where a registration (A04) says the patient arrived: hints for checking an appointment in. */
export interface ArrivalHint {
  /** SCH-2 (else SCH-1) when the A04 carries an SCH segment. */
  appointmentEhrId?: string;
  /** PV1-19.1, the visit number (some EHRs use the appointment's id, e.g. Epic's CSN). */
  visitNumber?: string;
}

/** The result of mapping one message. */
export type MappedMessage =
  | {
      kind: 'appointment';
      trigger: SiuTrigger;
      appointment: Candidate<AppointmentRecord>;
      /** The PID of the message; null when the SIU has none (the appointment then has no MRN and fails validation). */
      patient: Candidate<PatientRecord> | null;
      /** S17: the EHR deleted the appointment (an explicit deletion, docs/design.md §4). */
      deleted: boolean;
      /** The primary provider as the message names it (first AIP, else AIG), for the providers list. */
      provider: ProviderInfo | null;
    }
  | { kind: 'patient'; trigger: AdtPatientTrigger; patient: Candidate<PatientRecord>; arrival?: ArrivalHint }
  | {
      kind: 'merge';
      trigger: 'A40';
      /** The surviving patient (PID). */
      survivor: Candidate<PatientRecord>;
      /** The identifier the survivor's `ehr_patient_id` came from (PID-3: its `PI`, else the MRN); null when it has none (the survivor then fails validation). */
      survivorKey: Hl7Identifier | null;
      /**
       * Every identifier MRG-1 lists for the records merged into the survivor (all MRG segments),
       * typed, without duplicates and without the survivor's own PID-3 identifiers; those of the
       * survivor key's type (CX-5) first. HL7 merges an MRG-1 identifier "with the correct target
       * identifier of the same identifier type code in PID-3", and a sender may list only some types
       * (only the MR when earlier messages keyed the record by its PI), so no single id is chosen
       * here: the wiring retires a stored patient whose `ehr_patient_id` equals an identifier of the
       * survivor key's type, and matches the others (an `MR` when the key is `PI`) against the
       * stored `mrn` — or `ehr_patient_id`, for records that were keyed by their MRN.
       */
      merged: Hl7Identifier[];
    }
  | { kind: 'unsupported'; reason: string };

/** A patient identifier (CX) as the message types it. */
export interface Hl7Identifier {
  /** CX-1. */
  value: string;
  /** CX-5, the identifier type code (table 0203: `MR`, `PI` …), upper case; null when not sent. */
  type: string | null;
  /** CX-4, the assigning authority: its namespace ID, else its universal ID; null when not sent. */
  authority: string | null;
}

/** Why a supported message could not be mapped. */
export type MappingErrorCode =
  | 'missing_segment'
  | 'missing_appointment_id'
  | 'missing_patient_id'
  | 'missing_prior_patient_id'
  | 'ambiguous_merge'
  | 'invalid_timezone';

/**
 * A supported message that lacks what its mapping needs (no SCH-1/SCH-2, no PID-3 …). The reason
 * names segments and fields only, never their content, so it can go into logs and an ACK's text.
 */
export class MappingError extends Error {
  readonly code: MappingErrorCode;
  constructor(code: MappingErrorCode, reason: string) {
    super(reason);
    this.name = 'MappingError';
    this.code = code;
  }

  /** The reason (the same text as `message`). */
  get reason(): string {
    return this.message;
  }
}

/**
 * Maps one parsed message. SIU S12–S17/S26 → `appointment`; ADT A04/A08/A28/A31 → `patient`;
 * ADT A40 → `merge`; anything else → `unsupported` (not an error: the listener acknowledges it and
 * does nothing). Throws `MappingError` for a supported message missing what it needs. Values that
 * are present but malformed (a date that is not a date, a duration in unknown units) are passed on
 * as sent, so validation quarantines the record and names the field.
 */
export function mapMessage(msg: Hl7Message, opts: Hl7MappingOptions): MappedMessage {
  const type = msg.header.messageType.trim().toUpperCase();
  const trigger = msg.header.triggerEvent.trim().toUpperCase();
  if (type === 'SIU' && isOneOf(SIU_TRIGGERS, trigger)) return mapSiu(msg, trigger, opts);
  if (type === 'ADT' && isOneOf(ADT_PATIENT_TRIGGERS, trigger)) return mapAdtPatient(msg, trigger, opts);
  if (type === 'ADT' && trigger === 'A40') return mapMerge(msg, opts);
  return { kind: 'unsupported', reason: `${printable(type) || '(no type)'}^${printable(trigger) || '(no trigger)'} is not a supported message (SIU S12–S17, S26; ADT A04, A08, A28, A31, A40)` };
}

function isOneOf<T extends string>(list: readonly T[], v: string): v is T {
  return (list as readonly string[]).includes(v);
}

/** A message type or trigger fit for a reason: short, and only letters, digits and `_`. */
function printable(s: string): string {
  return s.replace(/[^A-Z0-9_]/g, '').slice(0, 8);
}

// ---------------------------------------------------------------------------------------------
// Reading values

/**
 * A value as text: trimmed, and HL7's explicit null `""` read as empty. A message is a snapshot of
 * the record, so "cleared" (`""`) and "not sent" both leave the field without a value.
 */
function text(seg: Hl7Segment | undefined, field: number, component = 1, subcomponent = 1, repetition = 1): string {
  if (!seg) return '';
  const v = seg.get(field, component, subcomponent, repetition).trim();
  return v === '""' ? '' : v;
}

/** The repetitions of a field, 1-based, at least one (so a single unrepeated value is read too). */
function reps(seg: Hl7Segment, field: number): number[] {
  return Array.from({ length: Math.max(1, seg.repetitions(field)) }, (_, i) => i + 1);
}

const orNull = (s: string): string | null => (s === '' ? null : s);

/**
 * Resource segments (AIS, AIG, AIL, AIP) still part of the appointment: an update (S14) may list a
 * resource with action code `D` (table 0206) to say it was removed; it is neither provider nor
 * location any more.
 */
function live(msg: Hl7Message, name: 'AIS' | 'AIG' | 'AIL' | 'AIP'): Hl7Segment[] {
  return msg.all(name).filter((s) => text(s, 2).toUpperCase() !== 'D');
}

/** A coded value (CE/CWE/CNE) for people: its text (component 2), else its identifier (component 1). */
function codedText(seg: Hl7Segment | undefined, field: number): string {
  return text(seg, field, 2) || text(seg, field, 1);
}

// ---------------------------------------------------------------------------------------------
// Identifiers (CX) and the patient

interface Cx {
  value: string;
  /** CX-4.1, the assigning authority's namespace ID. */
  authority: string;
  /** CX-4.2, its universal ID (e.g. an OID). */
  authorityId: string;
  /** CX-5, upper case. */
  type: string;
}

function cxList(seg: Hl7Segment, field: number): Cx[] {
  return reps(seg, field)
    .map((r) => ({ value: text(seg, field, 1, 1, r), authority: text(seg, field, 4, 1, r), authorityId: text(seg, field, 4, 2, r), type: text(seg, field, 5, 1, r).toUpperCase() }))
    .filter((c) => c.value !== '');
}

/** The MRN among identifiers: per `mrnSystem` (authority or type code), else typed `MR`, else the first. */
function chooseMrn(ids: readonly Cx[], mrnSystem: string | null | undefined): Cx | undefined {
  const sys = mrnSystem?.trim().toUpperCase();
  if (sys) return ids.find((i) => i.authority.toUpperCase() === sys || i.authorityId.toUpperCase() === sys || i.type === sys);
  return ids.find((i) => i.type === 'MR') ?? ids[0];
}

/**
 * The EHR's patient id: the identifier typed `PI` (patient internal identifier) when there is one —
 * the EHR's own key, which survives an MRN correction — else the MRN itself.
 */
function ehrPatientKey(ids: readonly Cx[], mrn: Cx | undefined): Cx | undefined {
  return ids.find((i) => i.type === 'PI') ?? mrn;
}

function identifier(c: Cx): Hl7Identifier {
  return { value: c.value, type: orNull(c.type), authority: orNull(c.authority || c.authorityId) };
}

/** HL7 table 0001 (administrative sex) → the values Cobalt's Patients API uses (male, female, other, unknown). */
const SEX: Readonly<Record<string, string>> = { F: 'female', M: 'male', O: 'other', A: 'other', X: 'other', U: 'unknown', N: 'unknown' };

/** Maps a PID to a patient candidate. Throws `missing_patient_id` when PID-3 has no identifier. */
export function mapPid(pid: Hl7Segment, opts: Pick<Hl7MappingOptions, 'mrnSystem'>): Candidate<PatientRecord> {
  const ids = cxList(pid, 3);
  if (ids.length === 0) throw new MappingError('missing_patient_id', 'PID-3 (patient identifier list) has no identifier');
  const mrn = chooseMrn(ids, opts.mrnSystem);

  // The legal name (XPN-7 `L`) when the sender lists several, else the first.
  const nameReps = reps(pid, 5);
  const nameRep = nameReps.find((r) => text(pid, 5, 7, 1, r).toUpperCase() === 'L') ?? nameReps[0] ?? 1;

  const rawDob = text(pid, 7);
  const dob = rawDob === '' ? null : hl7DateToIso(rawDob);
  const rawSex = text(pid, 8);

  const home = phones(pid, 13);
  const business = phones(pid, 14);
  const addr = address(pid, 11);
  return {
    ehr_patient_id: ehrPatientKey(ids, mrn)?.value,
    mrn: mrn?.value,
    first_name: orNull(text(pid, 5, 2, 1, nameRep)),
    last_name: orNull(text(pid, 5, 1, 1, nameRep)),
    // A partial date of birth (year or month only) is no calendar date: unknown, not an error.
    // A value that is no date at all goes on as sent, so validation quarantines and names it.
    dob: dob === 'partial' ? null : (dob ?? rawDob),
    sex: rawSex === '' ? null : (SEX[rawSex.toUpperCase()] ?? rawSex),
    phone: home.phone ?? business.phone ?? null,
    cell_phone: home.cell ?? business.cell ?? null,
    email: home.email ?? business.email ?? null,
    ...addr,
  };
}

interface Telecom {
  phone?: string;
  cell?: string;
  email?: string;
}

/**
 * The numbers of an XTN field. Email: use code NET or equipment Internet/X.400 (the address in
 * XTN-4; v2.3 senders put it in XTN-1). Cell: equipment CP. Phone: the first other telephone
 * (not fax, beeper or modem), preferring use PRN (primary residence). A repetition with use EMR
 * (emergency number) is an emergency contact's, never the patient's.
 */
function phones(seg: Hl7Segment, field: number): Telecom {
  const out: Telecom = {};
  let primaryResidence = false;
  for (const r of reps(seg, field)) {
    const use = text(seg, field, 2, 1, r).toUpperCase();
    if (use === 'EMR') continue;
    const equipment = text(seg, field, 3, 1, r).toUpperCase();
    const first = text(seg, field, 1, 1, r);
    if (use === 'NET' || equipment === 'INTERNET' || equipment === 'X.400') {
      const email = text(seg, field, 4, 1, r) || (first.includes('@') ? first : '');
      if (email && out.email === undefined) out.email = email;
      continue;
    }
    const number = first || text(seg, field, 12, 1, r) || composeNumber(seg, field, r);
    if (number === '') continue;
    if (equipment === 'CP') {
      out.cell ??= number;
    } else if (equipment === '' || equipment === 'PH') {
      if (out.phone === undefined || (!primaryResidence && use === 'PRN')) {
        out.phone = number;
        primaryResidence = use === 'PRN';
      }
    }
  }
  return out;
}

/** A number from XTN's parts (5 country, 6 area, 7 local, 8 extension), written as XTN-1 would be: `(608)555-1234 X12`. */
function composeNumber(seg: Hl7Segment, field: number, r: number): string {
  const country = text(seg, field, 5, 1, r);
  const area = text(seg, field, 6, 1, r);
  const local = text(seg, field, 7, 1, r);
  const ext = text(seg, field, 8, 1, r);
  if (local === '') return '';
  const localText = /^\d{7}$/.test(local) ? `${local.slice(0, 3)}-${local.slice(3)}` : local;
  return `${country ? `+${country} ` : ''}${area ? `(${area})` : ''}${localText}${ext ? ` X${ext}` : ''}`;
}

/** The home address (XAD-7 `H`) when the sender lists several, else the first. */
function address(seg: Hl7Segment, field: number): Pick<Candidate<PatientRecord>, 'address_street' | 'address_line2' | 'address_city' | 'address_state' | 'address_zip'> {
  const all = reps(seg, field);
  const r = all.find((x) => text(seg, field, 7, 1, x).toUpperCase() === 'H') ?? all[0] ?? 1;
  return {
    address_street: orNull(text(seg, field, 1, 1, r)),
    address_line2: orNull(text(seg, field, 2, 1, r)),
    address_city: orNull(text(seg, field, 3, 1, r)),
    address_state: orNull(text(seg, field, 4, 1, r)),
    address_zip: orNull(text(seg, field, 5, 1, r)),
  };
}

// ---------------------------------------------------------------------------------------------
// Providers (XCN)

/** `Dr. Tina Best`: prefix, given, middle, family, suffix, as far as sent. */
function personName(seg: Hl7Segment, field: number, r: number): string | null {
  const parts = [text(seg, field, 6, 1, r), text(seg, field, 3, 1, r), text(seg, field, 4, 1, r), text(seg, field, 2, 1, r), text(seg, field, 5, 1, r)].filter((p) => p !== '');
  return parts.length > 0 ? parts.join(' ') : null;
}

/**
 * A provider from an XCN field (AIP-3). Its id is the first repetition's XCN-1; its name the first
 * repetition that has one; its NPI the XCN-1 of a repetition whose identifier type (XCN-13) or
 * assigning authority (XCN-9) is `NPI` — EHRs list the same person under several ids that way.
 */
function providerFromXcn(seg: Hl7Segment, field: number): ProviderInfo | null {
  const all = reps(seg, field);
  const idRep = all.find((r) => text(seg, field, 1, 1, r) !== '');
  if (idRep === undefined) return null;
  const npiRep = all.find((r) => text(seg, field, 1, 1, r) !== '' && (text(seg, field, 13, 1, r).toUpperCase() === 'NPI' || text(seg, field, 9, 1, r).toUpperCase() === 'NPI'));
  let name: string | null = null;
  for (const r of all) if ((name = personName(seg, field, r)) !== null) break;
  return { ehr_id: text(seg, field, 1, 1, idRep), name, npi: npiRep === undefined ? null : text(seg, field, 1, 1, npiRep) };
}

/**
 * AIG-4 resource types (identifier or text, upper case) that name a person. AIG-4 has no HL7 table
 * and AIG is meant for equipment and the like, so a resource counts as a provider only when its
 * type says so; one without AIG-4 (required by the standard) is not taken as a person either.
 */
const PERSON_RESOURCE_TYPES: ReadonlySet<string> = new Set([
  'PERSON', 'PERSONNEL', 'PROVIDER', 'PROV', 'PRACTITIONER', 'CLINICIAN', 'PHYSICIAN', 'PHYS', 'DOCTOR', 'DR', 'NURSE', 'STAFF',
]);

/** A provider from a general resource whose AIG-4 names a person (AIG-3, a coded value: id, then text). */
function providerFromAig(seg: Hl7Segment): ProviderInfo | null {
  if (!PERSON_RESOURCE_TYPES.has(text(seg, 4, 1).toUpperCase()) && !PERSON_RESOURCE_TYPES.has(text(seg, 4, 2).toUpperCase())) return null;
  const id = text(seg, 3, 1);
  return id === '' ? null : { ehr_id: id, name: orNull(text(seg, 3, 2)), npi: null };
}

// ---------------------------------------------------------------------------------------------
// Timing

/** Minutes per unit of time, by the codes senders use for SCH-10, AIS-8, TQ1-6.2 (ISO+, UCUM, words). */
const UNIT_MINUTES: Readonly<Record<string, number>> = {
  S: 1 / 60, SEC: 1 / 60, SECS: 1 / 60, SECOND: 1 / 60, SECONDS: 1 / 60,
  M: 1, MIN: 1, MINS: 1, MINUTE: 1, MINUTES: 1,
  H: 60, HR: 60, HRS: 60, HOUR: 60, HOURS: 60,
  D: 1440, DAY: 1440, DAYS: 1440,
  WK: 10080, W: 10080, WEEK: 10080, WEEKS: 10080,
};

/** A duration result: minutes; null when nothing was sent; the text as sent when it cannot be read (validation quarantines it). */
type Minutes = number | string | null;

/**
 * A quantity and its units (CE: identifier, else text) in minutes. A number without units is read
 * as minutes: every scheduling feed we know of sends minutes, and an appointment of "30" seconds
 * is not what any clinic means.
 */
function quantityMinutes(quantity: string, unit: string): Minutes {
  if (quantity === '') return null;
  const per = unit === '' ? 1 : UNIT_MINUTES[unit.toUpperCase()];
  if (!/^\d+(\.\d+)?$/.test(quantity) || per === undefined) return unit === '' ? quantity : `${quantity} ${unit}`;
  return Math.round(Number(quantity) * per);
}

/**
 * The TQ duration component (SCH-11.3): `M30` is 30 minutes, `H1` an hour … A bare number is taken
 * as minutes (senders such as Epic write `30`). `INDEF`, `X<n>` (times), `T<n>` (total) and `L<n>`
 * (months) are not an appointment's length: no duration from this component.
 */
function tqDuration(value: string): Minutes {
  if (value === '') return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value));
  const m = /^([SMHDW])(\d+(?:\.\d+)?)$/i.exec(value);
  if (m) return quantityMinutes(m[2] as string, (m[1] as string).toUpperCase());
  if (/^(INDEF|[XTL]\d+(\.\d+)?)$/i.test(value)) return null;
  return value;
}

/** A units field (CE/CNE): its identifier, else its text (`^minutes`). `component` > 1 when the units are a component (CQ-2). */
function unitOf(seg: Hl7Segment | undefined, field: number, component = 1): string {
  return component === 1 ? text(seg, field, 1) || text(seg, field, 2) : text(seg, field, component, 1) || text(seg, field, component, 2);
}

/** Whole minutes from start to end when both are readable and in order. */
function span(startIso: string | null, end: string, zone: string): number | null {
  const endIso = end === '' ? null : hl7DateTimeToIso(end, zone, 'minute');
  if (startIso === null || endIso === null) return null;
  const ms = Date.parse(endIso) - Date.parse(startIso);
  return ms >= 0 ? Math.round(ms / 60_000) : null;
}

interface TimingSource {
  start: string;
  end: string;
  duration: () => Minutes;
}

/**
 * The appointment's start and duration. Start: TQ1-7 (v2.5+ timing; where both are sent, SCH-11 is
 * kept only for backward compatibility), else SCH-11.4, else the first live resource's start (AIS-4,
 * AIP-6, AIL-6, AIG-8). Duration: from the same source (TQ1-6, else TQ1-8 − start; SCH-11.3, else
 * SCH-11.5 − start; the resource's duration and units), else TQ1-6, SCH-9/SCH-10, AIS-7/AIS-8.
 * A start that cannot be read is passed on as sent, so validation quarantines it with its reason.
 */
function timing(msg: Hl7Message, sch: Hl7Segment, zone: string): { datetime: string | undefined; duration: Minutes } {
  const tq1 = msg.segment('TQ1');
  const ais = live(msg, 'AIS')[0];
  const sources: TimingSource[] = [];
  if (tq1) sources.push({ start: text(tq1, 7), end: text(tq1, 8), duration: () => quantityMinutes(text(tq1, 6, 1), unitOf(tq1, 6, 2)) });
  sources.push({ start: text(sch, 11, 4), end: text(sch, 11, 5), duration: () => tqDuration(text(sch, 11, 3)) });
  if (ais) sources.push({ start: text(ais, 4), end: '', duration: () => quantityMinutes(text(ais, 7), unitOf(ais, 8)) });
  for (const s of live(msg, 'AIP')) sources.push({ start: text(s, 6), end: '', duration: () => quantityMinutes(text(s, 9), unitOf(s, 10)) });
  for (const s of live(msg, 'AIL')) sources.push({ start: text(s, 6), end: '', duration: () => quantityMinutes(text(s, 9), unitOf(s, 10)) });
  for (const s of live(msg, 'AIG')) sources.push({ start: text(s, 8), end: '', duration: () => quantityMinutes(text(s, 11), unitOf(s, 12)) });

  // When the start's own source gives no length: TQ1-6 (a TQ1 may carry only the duration),
  // SCH-9/SCH-10, then the service's AIS-7/AIS-8.
  const fallback = (): Minutes => quantityMinutes(text(tq1, 6, 1), unitOf(tq1, 6, 2)) ?? quantityMinutes(text(sch, 9), unitOf(sch, 10)) ?? quantityMinutes(text(ais, 7), unitOf(ais, 8));
  const source = sources.find((s) => s.start !== '');
  if (!source) return { datetime: undefined, duration: fallback() };
  const startIso = hl7DateTimeToIso(source.start, zone);
  return { datetime: startIso ?? source.start, duration: source.duration() ?? span(startIso, source.end, zone) ?? fallback() };
}

// ---------------------------------------------------------------------------------------------
// Status

/**
 * The filler status a trigger asserts. S12 (new booking) and S13 (rescheduled) are booked
 * appointments; S15, S16, S26 and S17 report an outcome. S14 (modification) asserts nothing: a
 * modification of a checked-in appointment must not turn it back into a booked one.
 */
const TRIGGER_STATUS: Readonly<Partial<Record<SiuTrigger, string>>> = { S12: 'Booked', S13: 'Booked', S15: 'Cancelled', S16: 'Dc', S17: 'Deleted', S26: 'Noshow' };
/** Triggers whose outcome wins over an SCH-25 that says otherwise. */
const OUTCOME_TRIGGERS: ReadonlySet<SiuTrigger> = new Set(['S15', 'S16', 'S26']);

/**
 * The raw status: SCH-25 as sent (its identifier, else its text); without one, the code the trigger
 * asserts; for S14 without one, absent (the wiring keeps the known status; a new appointment without
 * any fails validation). One correction: a cancel, discontinue or no-show notification whose
 * SCH-25 normalizes to a different known status than the trigger's code — a stale `Booked` left in
 * an S26 — takes the trigger's code; a local code nobody mapped is kept as sent. "Normalizes" is
 * `normalizeStatus` with the connection's effective map, exactly as the sync will read the status.
 */
function siuStatus(sch: Hl7Segment, trigger: SiuTrigger, map: StatusMap): string | undefined {
  const sent = text(sch, 25, 1) || text(sch, 25, 2);
  const implied = TRIGGER_STATUS[trigger];
  if (sent === '') return implied;
  if (implied !== undefined && OUTCOME_TRIGGERS.has(trigger)) {
    const said = normalizeStatus(sent, map);
    if ((NORMALIZED_STATUSES as readonly string[]).includes(said) && said !== normalizeStatus(implied, map)) return implied;
  }
  return sent;
}

// ---------------------------------------------------------------------------------------------
// The messages

function mapSiu(msg: Hl7Message, trigger: SiuTrigger, opts: Hl7MappingOptions): MappedMessage {
  if (!isTimeZone(opts.timezone)) throw new MappingError('invalid_timezone', 'the connection time zone is not an IANA time zone');
  const sch = msg.segment('SCH');
  if (!sch) throw new MappingError('missing_segment', `SIU^${trigger} has no SCH segment`);
  // The filler's id (SCH-2) is the scheduling system's own key; the placer's (SCH-1) is the
  // requester's, used by feeds whose filler leaves SCH-2 empty.
  const id = text(sch, 2) || text(sch, 1);
  if (id === '') throw new MappingError('missing_appointment_id', 'SCH-1 and SCH-2 (placer and filler appointment ID) are both empty');

  const pid = msg.segment('PID');
  const patient = pid ? mapPid(pid, opts) : null;
  const { datetime, duration } = timing(msg, sch, opts.timezone);

  const personnel = live(msg, 'AIP').map((s) => providerFromXcn(s, 3)).filter((p): p is ProviderInfo => p !== null);
  const provider = personnel[0] ?? live(msg, 'AIG').map(providerFromAig).find((p) => p !== null) ?? null;

  const ail = live(msg, 'AIL').find((s) => text(s, 3, 1) || text(s, 3, 4) || text(s, 3, 9));
  const location = text(ail, 3, 1) || text(ail, 3, 4) || text(ail, 3, 9);
  const ais = live(msg, 'AIS').find((s) => codedText(s, 3) !== '');
  // The service (AIS-3), else the reason (SCH-7). Not SCH-8: table 0277 says how firm the booking is.
  const type = codedText(ais, 3) || codedText(sch, 7);

  const first = typeof patient?.first_name === 'string' ? patient.first_name : '';
  const last = typeof patient?.last_name === 'string' ? patient.last_name : '';
  const appointment: Candidate<AppointmentRecord> = {
    ehr_appointment_id: id,
    // Without a PID (optional in SIU) the message does not carry the patient: undefined, so an
    // update keeps the known patient (a new appointment without one fails validation: no MRN).
    patient_ehr_id: patient === null ? undefined : typeof patient.ehr_patient_id === 'string' ? patient.ehr_patient_id : null,
    patient_mrn: patient?.mrn,
    patient_name: patient === null ? undefined : orNull(`${first} ${last}`.trim()),
    datetime,
    timezone: opts.timezone,
    duration,
    location: orNull(location),
    status: siuStatus(sch, trigger, opts.statusMap),
    provider_ehr_id: provider?.ehr_id ?? null,
    provider_name: provider?.name ?? null,
    // The second personnel resource; a provider taken from AIG has no second.
    secondary_provider_ehr_id: personnel[1]?.ehr_id ?? null,
    appointment_type: orNull(type),
    // HL7 v2 has no field for the visit's mode (office, telehealth).
    appointment_mode: null,
  };
  return { kind: 'appointment', trigger, appointment, patient, deleted: trigger === 'S17', provider };
}

function mapAdtPatient(msg: Hl7Message, trigger: AdtPatientTrigger, opts: Hl7MappingOptions): MappedMessage {
  const pid = msg.segment('PID');
  if (!pid) throw new MappingError('missing_segment', `ADT^${trigger} has no PID segment`);
  const patient = mapPid(pid, opts);
  if (trigger !== 'A04') return { kind: 'patient', trigger, patient };
  // A registration is often the front desk checking the patient in for today's appointment; what
  // ties it to one is left to the wiring, which knows the appointments.
  const sch = msg.segment('SCH');
  const arrival: ArrivalHint = {};
  const appointmentEhrId = text(sch, 2) || text(sch, 1);
  const visitNumber = text(msg.segment('PV1'), 19);
  if (appointmentEhrId !== '') arrival.appointmentEhrId = appointmentEhrId;
  if (visitNumber !== '') arrival.visitNumber = visitNumber;
  return Object.keys(arrival).length > 0 ? { kind: 'patient', trigger, patient, arrival } : { kind: 'patient', trigger, patient };
}

function mapMerge(msg: Hl7Message, opts: Hl7MappingOptions): MappedMessage {
  const pids = msg.all('PID');
  const mrgs = msg.all('MRG');
  if (pids.length === 0) throw new MappingError('missing_segment', 'ADT^A40 has no PID segment');
  if (mrgs.length === 0) throw new MappingError('missing_segment', 'ADT^A40 has no MRG segment');
  const survivor = mapPid(pids[0] as Hl7Segment, opts);
  // A40 may repeat its PATIENT group (PID, MRG) to merge several records; into one survivor is
  // what ehrsync can apply — several survivors in one message would be several merges at once.
  for (const other of pids.slice(1)) {
    if (mapPid(other, opts).ehr_patient_id !== survivor.ehr_patient_id) throw new MappingError('ambiguous_merge', 'ADT^A40 names more than one surviving patient (PID-3)');
  }
  const survivorIds = cxList(pids[0] as Hl7Segment, 3);
  // Undefined only when PID-3 has no PI and nothing matches the mrnSystem: the survivor then has no
  // ehr_patient_id and fails validation, as any patient would.
  const key = ehrPatientKey(survivorIds, chooseMrn(survivorIds, opts.mrnSystem));
  const sameCx = (a: Cx, b: Cx): boolean => a.value === b.value && a.type === b.type;
  const seen: Cx[] = [];
  let usable = 0;
  for (const mrg of mrgs) {
    for (const c of cxList(mrg, 1)) {
      usable += 1;
      if (survivorIds.some((s) => sameCx(s, c))) continue;
      if (!seen.some((s) => sameCx(s, c) && s.authority === c.authority && s.authorityId === c.authorityId)) seen.push(c);
    }
  }
  if (usable === 0) throw new MappingError('missing_prior_patient_id', 'MRG-1 (prior patient identifier list) has no usable identifier');
  // The survivor key's type first (a stable sort keeps MRG order within each group).
  const keyType = (c: Cx): number => Number(key !== undefined && c.type === key.type);
  const merged = [...seen].sort((a, b) => keyType(b) - keyType(a)).map(identifier);
  return { kind: 'merge', trigger: 'A40', survivor, survivorKey: key === undefined ? null : identifier(key), merged };
}
