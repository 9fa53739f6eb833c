/**
 * @module connectors/hl7v2/status-map — HL7 v2 filler status codes (SCH-25, HL7 table 0278) →
 * ehrsync's normalized statuses: the hl7v2 connector's own layer of a connection's status map.
 * src/connectors/registry.ts (`connectionStatusMap`) builds the effective map from it as for every
 * connection: the default map, then the connector's own codes (this table, then the config's
 * `statusMap`), then the connection's `status_map`. The mapping judges a
 * status with that same map and `normalizeStatus` (exact key first, then the raw code lowercased),
 * so it never disagrees with the sync about what a code means.
 *
 * Table 0278 (terminology.hl7.org/CodeSystem/v2-0278; integrationsoup.com/hl7-reference/tables/0278):
 * Pending "not yet confirmed", Waitlist "placed on a waiting list", Booked, Started "has begun and is
 * currently in progress", Complete "completed normally", Cancelled "stopped from occurring (canceled
 * prior to starting)", Dc "discontinued (DC'ed while in progress …)", Deleted "deleted from the
 * filler application", Blocked "the indicated time slot(s) is(are) blocked", Overbook "confirmed …
 * in an overbooked state", Noshow "the patient did not show up".
 *
 * Known issue: the default map beneath this layer carries athenahealth's codes (`f`, `2`, `3`, `4`,
 * `x`), so they apply to hl7v2 connections too (an SCH-25 of `3` reads as `completed`) until the
 * FHIR vendor-profile work moves them out of the default map. A site whose local codes collide
 * overrides them in the connection's map.
 */
import type { StatusMap } from '../../domain/status.js';

/**
 * Table 0278 as the hl7v2 connector's own status codes: keys as HL7 spells them (`Booked`), each
 * with its lowercase form too. `normalizeStatus` lowercases a raw code only on its second try, so
 * the lowercase key is what lets `BOOKED`, `booked` or `DC` read like `Booked` and `Dc` (the code
 * system is case-insensitive — THO lists both `BOOKED` and `Booked` — and senders differ).
 * Consequence for overrides: a connection key wins for the spelling it is written in; to re-read a
 * table code in every case, override both forms (`{ "Booked": "confirmed", "booked": "confirmed" }`).
 *
 * Deliberately unmapped (they pass through raw, as FHIR's `waitlist` does in the default map):
 * `Waitlist` — not a visit that will happen at a time, nothing a customer should act on; `Blocked` —
 * a blocked slot, not a patient's appointment. `Started` is `in-room`: the visit has begun (checked
 * in is earlier than that). `Dc` and `Deleted` are `cancelled`: the visit will not (or no longer)
 * take place; an S17 deletion is signalled separately (`deleted` of the mapped message), not by this
 * status.
 */
export const HL7_FILLER_STATUS_MAP: StatusMap = Object.freeze(
  Object.fromEntries(
    (
      [
        ['Pending', 'scheduled'],
        ['Booked', 'scheduled'],
        ['Overbook', 'scheduled'],
        ['Started', 'in-room'],
        ['Complete', 'completed'],
        ['Cancelled', 'cancelled'],
        ['Dc', 'cancelled'],
        ['Deleted', 'cancelled'],
        ['Noshow', 'no-show'],
      ] as const
    ).flatMap(([code, status]) => [
      [code, status],
      [code.toLowerCase(), status],
    ]),
  ),
);
