/**
 * @module connectors/hl7v2/status-map — HL7 v2 filler status codes (SCH-25, HL7 table 0278) →
 * ehrsync's normalized statuses, and the per-connection overrides laid over them. Pure data and one
 * merge; the hl7v2 connector exposes the result as its `statusMap`, beneath the connection's
 * `status_map` (as every connector's own codes are: src/domain/status.ts).
 *
 * Table 0278 (terminology.hl7.org/CodeSystem/v2-0278; integrationsoup.com/hl7-reference/tables/0278):
 * Pending "not yet confirmed", Waitlist "placed on a waiting list", Booked, Started "has begun and is
 * currently in progress", Complete "completed normally", Cancelled "stopped from occurring (canceled
 * prior to starting)", Dc "discontinued (DC'ed while in progress …)", Deleted "deleted from the
 * filler application", Blocked "the indicated time slot(s) is(are) blocked", Overbook "confirmed …
 * in an overbooked state", Noshow "the patient did not show up". The code system is
 * case-insensitive (THO lists both `BOOKED` and `Booked`), and senders differ, so keys here are
 * lowercase: `normalizeStatus` tries the raw code exactly, then lowercased.
 */
import type { StatusMap } from '../../domain/status.js';

/**
 * The default map of table 0278. Deliberately unmapped (they pass through raw, as FHIR's
 * `waitlist` does in the default map): `Waitlist` — not a visit that will happen at a time, nothing
 * a customer should act on; `Blocked` — a blocked slot, not a patient's appointment.
 * `Started` is `in-room`: the visit has begun (checked in is earlier than that). `Dc` and `Deleted`
 * are `cancelled`: the visit will not (or no longer) take place; an S17 deletion is signalled
 * separately (`deleted` of the mapped message), not by this status.
 */
export const HL7_FILLER_STATUS_MAP: StatusMap = Object.freeze({
  pending: 'scheduled',
  booked: 'scheduled',
  overbook: 'scheduled',
  started: 'in-room',
  complete: 'completed',
  cancelled: 'cancelled',
  dc: 'cancelled',
  deleted: 'cancelled',
  noshow: 'no-show',
});

/**
 * The hl7v2 connector's status map: table 0278's defaults with a connection's overrides on top
 * (e.g. a site's local codes, `{ "1": "scheduled", "CX": "cancelled" }`, or a different reading of
 * a table code, `{ "Booked": "confirmed" }`). Override keys are lowercased so they match
 * case-insensitively like the defaults; of two keys that differ only in case, the later wins.
 */
export function hl7StatusMap(overrides?: StatusMap | null): StatusMap {
  // fromEntries defines own properties, so a code such as "__proto__" is a key like any other.
  const entries = [...Object.entries(HL7_FILLER_STATUS_MAP), ...Object.entries(overrides ?? {}).map(([code, status]) => [code.trim().toLowerCase(), status] as const)];
  return Object.freeze(Object.fromEntries(entries));
}
