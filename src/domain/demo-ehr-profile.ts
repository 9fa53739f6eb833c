/**
 * @module domain/demo-ehr-profile — what the `demo` connector kind and the demo EHR agree on: MRN
 * system, extension URLs, native status codes. Both sides import these, so they cannot drift apart.
 */
import type { StatusMap } from './status.js';

/** Extension URL ehrsync reads the appointment mode from by default (and writes it to). */
export const MODE_EXTENSION = 'https://ehrsync.dev/fhir/StructureDefinition/appointment-mode';

/** Identifier system of the demo EHR's MRNs. */
export const DEMO_MRN_SYSTEM = 'urn:demo-ehr:mrn';
/** Extension URL the demo EHR puts its native (athena-style) status code in. */
export const DEMO_NATIVE_STATUS_EXTENSION = 'https://ehrsync.dev/fhir/StructureDefinition/native-status';

/**
 * The demo EHR's native status codes (athena-style, with `n` for a no-show, which athena records
 * as a cancel reason) → normalized statuses.
 */
export const DEMO_NATIVE_STATUS_MAP: StatusMap = { f: 'scheduled', '2': 'checked-in', '3': 'completed', '4': 'completed', x: 'cancelled', n: 'no-show' };

/** Native code of each FHIR status the demo EHR uses, and back. */
export const DEMO_FHIR_TO_NATIVE: Readonly<Record<string, string>> = { booked: 'f', 'checked-in': '2', arrived: '2', fulfilled: '3', cancelled: 'x', noshow: 'n' };
