/**
 * @module domain/status — appointment status normalization. Payloads of `appointment.updated` carry
 * the EHR's raw code; `appointment.status_updated` carries the normalized one (docs/design.md §3).
 */

/** The normalized appointment statuses of `appointment.status_updated`. */
export const NORMALIZED_STATUSES = [
  'scheduled',
  'confirmed',
  'checked-in',
  'in-room',
  'completed',
  'cancelled',
  'no-show',
  'rescheduled',
] as const;

/** A normalized status. A raw code with no mapping passes through unchanged, so the type is open. */
export type NormalizedStatus = (typeof NORMALIZED_STATUSES)[number];

/** Raw EHR code → normalized status. Keys are matched exactly first, then case-insensitively. */
export type StatusMap = Readonly<Record<string, string>>;

/**
 * The default map: FHIR R4 `AppointmentStatus` codes and athenahealth-style codes together (their
 * keys do not collide). A connection's own map is laid over it.
 * - FHIR: proposed/pending/booked → scheduled; arrived, checked-in → checked-in; fulfilled → completed;
 *   cancelled → cancelled; noshow → no-show. `entered-in-error` and `waitlist` are left unmapped on
 *   purpose: they are not a visit state a customer should act on, so they pass through raw.
 * - athena: f (future) → scheduled, 2 (checked in) → checked-in, 3 (checked out) and 4 (charge
 *   entered) → completed, x → cancelled.
 * - The normalized names themselves map to themselves, so an EHR (or the demo) that already speaks
 *   them needs no map.
 */
export const DEFAULT_STATUS_MAP: StatusMap = {
  proposed: 'scheduled',
  pending: 'scheduled',
  booked: 'scheduled',
  arrived: 'checked-in',
  'checked-in': 'checked-in',
  fulfilled: 'completed',
  cancelled: 'cancelled',
  noshow: 'no-show',
  f: 'scheduled',
  '2': 'checked-in',
  '3': 'completed',
  '4': 'completed',
  x: 'cancelled',
  scheduled: 'scheduled',
  confirmed: 'confirmed',
  'in-room': 'in-room',
  completed: 'completed',
  'no-show': 'no-show',
  rescheduled: 'rescheduled',
};

/** Builds a connection's effective map: the default with the connection's overrides on top. */
export function effectiveStatusMap(overrides: StatusMap | null | undefined): StatusMap {
  return overrides ? { ...DEFAULT_STATUS_MAP, ...overrides } : DEFAULT_STATUS_MAP;
}

/** Normalizes a raw code through a map; an unmapped code passes through unchanged. */
export function normalizeStatus(raw: string, map: StatusMap): string {
  // hasOwn, not `map[raw]`: a raw code such as "constructor" must not hit Object.prototype.
  if (Object.hasOwn(map, raw)) return map[raw] as string;
  const lower = raw.toLowerCase();
  if (Object.hasOwn(map, lower)) return map[lower] as string;
  return raw;
}
