/**
 * @module demo-ehr/web-page — the demo EHR's front desk in a browser: the day's schedule, booking,
 * moving, checking in, cancelling, and editing patients. Server-rendered HTML with plain forms
 * (POST, then redirect), no build step, no external assets.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { zonedStartOfDay } from '../domain/clock.js';
import type { DemoClinic } from './clinic.js';
import { APPOINTMENT_TYPES, displayName, mrnOf, practitionerDisplay } from './clinic.js';
import { readBody } from './fhir-api.js';
import type { FhirResource } from './store.js';

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STATUS_LABEL: Record<string, string> = { booked: 'Booked', 'checked-in': 'Checked in', arrived: 'Arrived', fulfilled: 'Completed', cancelled: 'Cancelled', noshow: 'No-show' };

const STYLE = `body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}header{background:#234;color:#fff;padding:.8em 1.5em;display:flex;gap:2em;align-items:center}header a{color:#cde}main{padding:1em 1.5em}table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:.35em .6em;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:middle}tr.cancelled td,tr.noshow td{color:#999;text-decoration:line-through}tr.cancelled td:last-child,tr.noshow td:last-child{text-decoration:none}form.inline{display:inline}fieldset{background:#fff;border:1px solid #dde;margin:1em 0}label{margin-right:1em}.status{font-weight:600}.note{color:#667;font-size:13px}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Demo EHR</title><meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head><body><header><strong>Demo EHR</strong><a href="/">Schedule</a><a href="/patients">Patients</a><span class="note">fake data only</span></header><main>${body}</main></body></html>`;
}

function html(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function redirect(res: ServerResponse, to: string): void {
  res.writeHead(303, { location: to }).end();
}

/** `YYYY-MM-DD` of an instant in the clinic's zone. */
function localDate(ms: number, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

function localTime(ms: number, zone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ms);
}

/** An instant from a clinic-local date and `HH:MM`. */
export function localInstant(date: string, time: string, zone: string): number {
  const [h, m] = time.split(':').map(Number) as [number, number];
  return zonedStartOfDay(date, zone) + h * 3_600_000 + m * 60_000;
}

function schedule(clinic: DemoClinic, date: string): string {
  const zone = clinic.options.timezone;
  const start = zonedStartOfDay(date, zone);
  const appts = clinic.appointmentsBetween(start, start + 86_400_000);
  const patients = clinic.all('Patient');
  const drs = clinic.all('Practitioner');
  const byId = new Map([...patients, ...drs].map((r) => [`${r.resourceType}/${r.id}`, r]));
  const prev = localDate(start - 43_200_000, zone);
  const next = localDate(start + 129_600_000, zone);
  const rows = appts
    .map((a) => {
      const parts = (a.participant as { actor?: { reference?: string; display?: string } }[]) ?? [];
      const pref = parts.find((p) => p.actor?.reference?.startsWith('Patient/'))?.actor?.reference ?? '';
      const dref = parts.find((p) => p.actor?.reference?.startsWith('Practitioner/'))?.actor?.reference ?? '';
      const p = byId.get(pref);
      const d = byId.get(dref);
      const loc = parts.find((x) => x.actor?.reference?.startsWith('Location/'))?.actor?.display ?? 'telehealth';
      const ms = Date.parse(String(a.start));
      const status = String(a.status);
      const native = ((a.extension as { url: string; valueCode?: string }[] | undefined) ?? []).find((e) => e.url.endsWith('native-status'))?.valueCode;
      const act = (s: string, label: string) => `<form class="inline" method="post" action="/ui/appointments/${esc(a.id)}/status"><input type="hidden" name="status" value="${s}"><input type="hidden" name="date" value="${esc(date)}"><button type="submit">${label}</button></form>`;
      const live = status === 'booked' || status === 'checked-in' || status === 'arrived';
      return `<tr data-id="${esc(a.id)}" class="${esc(status)}"><td>${esc(localTime(ms, zone))}</td><td>${esc((a.appointmentType as { text?: string } | undefined)?.text)}</td><td>${p ? `<a href="/patients/${esc(p.id)}">${esc(displayName(p))}</a> <span class="note">${esc(mrnOf(p))}</span>` : '?'}</td><td>${esc(d ? practitionerDisplay(d) : '?')}</td><td>${esc(loc)}</td><td class="status">${esc(STATUS_LABEL[status] ?? status)}${native ? ` <span class="note">(${esc(native)})</span>` : ''}</td><td>${
        live
          ? `${status === 'booked' ? act('checked-in', 'Check in') : act('fulfilled', 'Complete')} ${act('cancelled', 'Cancel')} ${status === 'booked' ? act('noshow', 'No-show') : ''}
        <form class="inline" method="post" action="/ui/appointments/${esc(a.id)}/move"><input type="hidden" name="date" value="${esc(date)}"><input type="date" name="new_date" value="${esc(date)}" aria-label="New date"><input type="time" name="time" value="${esc(localTime(ms, zone))}" aria-label="New time"><button type="submit">Move</button></form>`
          : ''
      }</td></tr>`;
    })
    .join('');
  const patientOptions = patients.map((p) => `<option value="${esc(p.id)}">${esc(displayName(p))} (${esc(mrnOf(p))})</option>`).join('');
  const drOptions = drs.map((d) => `<option value="${esc(d.id)}">${esc(practitionerDisplay(d))}</option>`).join('');
  const typeOptions = APPOINTMENT_TYPES.map((t) => `<option value="${esc(t.code)}">${esc(t.code)} (${t.minutes} min)</option>`).join('');
  return page(
    `Schedule ${date}`,
    `<h1>Schedule for <span id="day">${esc(date)}</span></h1><p><a href="/?date=${esc(prev)}">← previous day</a> · <a href="/">today</a> · <a href="/?date=${esc(next)}">next day →</a> <span class="note">(times in ${esc(zone)})</span></p>
    <fieldset><legend>Book an appointment</legend><form id="book" method="post" action="/ui/book"><input type="hidden" name="date" value="${esc(date)}">
    <label>Patient <select name="patient" id="book-patient">${patientOptions}</select></label><label>Provider <select name="practitioner" id="book-practitioner">${drOptions}</select></label>
    <label>Time <input type="time" name="time" id="book-time" value="12:00" required></label><label>Type <select name="type" id="book-type">${typeOptions}</select></label>
    <label>Note <input name="note" id="book-note" maxlength="200"></label><button type="submit" id="book-submit">Book</button></form></fieldset>
    <table id="schedule"><thead><tr><th>Time</th><th>Type</th><th>Patient</th><th>Provider</th><th>Where</th><th>Status</th><th></th></tr></thead><tbody>${rows || '<tr><td colspan="7">No appointments.</td></tr>'}</tbody></table>`,
  );
}

function patientList(clinic: DemoClinic): string {
  const rows = clinic.all('Patient').map((p) => `<tr><td><a href="/patients/${esc(p.id)}">${esc(displayName(p))}</a></td><td>${esc(mrnOf(p))}</td><td>${esc(p.birthDate)}</td></tr>`).join('');
  return page('Patients', `<h1>Patients</h1><table><thead><tr><th>Name</th><th>MRN</th><th>Born</th></tr></thead><tbody>${rows}</tbody></table>`);
}

function patientForm(p: FhirResource, saved: boolean): string {
  const tel = (p.telecom as { system: string; use?: string; value: string }[] | undefined) ?? [];
  const phone = tel.find((t) => t.system === 'phone' && t.use !== 'mobile')?.value ?? '';
  const email = tel.find((t) => t.system === 'email')?.value ?? '';
  const a = ((p.address as { line?: string[]; city?: string; state?: string; postalCode?: string }[] | undefined) ?? [])[0] ?? {};
  const field = (name: string, label: string, value: string) => `<p><label>${label} <input name="${name}" id="patient-${name}" value="${esc(value)}"></label></p>`;
  return page(
    displayName(p),
    `<h1>${esc(displayName(p))} <span class="note">${esc(mrnOf(p))}</span></h1>${saved ? '<p id="saved">Saved.</p>' : ''}<form method="post" action="/ui/patients/${esc(p.id)}">${field('phone', 'Phone', phone)}${field('email', 'Email', email)}${field('street', 'Street', a.line?.[0] ?? '')}${field('city', 'City', a.city ?? '')}${field('state', 'State', a.state ?? '')}${field('zip', 'ZIP', a.postalCode ?? '')}<button type="submit" id="patient-save">Save</button></form>`,
  );
}

/** Handles a request for the web page (anything not under `/fhir`). */
export async function handlePage(clinic: DemoClinic, req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  const zone = clinic.options.timezone;
  const today = localDate(clinic.options.now(), zone);
  const method = req.method ?? 'GET';
  const form = method === 'POST' ? new URLSearchParams(await readBody(req)) : new URLSearchParams();
  const day = (d: string | null) => (d && /^\d{4}-\d{2}-\d{2}$/.test(d) ? d : today);
  const seg = path.split('/').filter(Boolean);
  if (method === 'GET' && seg.length === 0) return html(res, 200, schedule(clinic, day(query.get('date'))));
  if (method === 'GET' && seg[0] === 'patients' && seg.length === 1) return html(res, 200, patientList(clinic));
  if (method === 'GET' && seg[0] === 'patients' && seg.length === 2) {
    const p = clinic.store.get('Patient', seg[1] as string);
    if (!p || p === 'gone') return html(res, 404, page('Not found', '<h1>No such patient</h1>'));
    return html(res, 200, patientForm(p.resource, query.has('saved')));
  }
  if (method === 'POST' && seg[0] === 'ui') {
    const date = day(form.get('date'));
    if (seg[1] === 'book') {
      const type = APPOINTMENT_TYPES.find((t) => t.code === form.get('type')) ?? APPOINTMENT_TYPES[1]!;
      const time = form.get('time') ?? '';
      if (!/^\d{2}:\d{2}$/.test(time)) return html(res, 400, page('Bad input', '<h1>Give a time as HH:MM.</h1>'));
      clinic.book({ patientId: form.get('patient') ?? '', practitionerId: form.get('practitioner') ?? '', start: new Date(localInstant(date, time, zone)).toISOString(), minutes: type.minutes, type: type.code, location: type.mode === 'office' ? 'Room 1' : null, mode: type.mode, note: form.get('note') || undefined });
      return redirect(res, `/?date=${date}`);
    }
    if (seg[1] === 'appointments' && seg[3] === 'status') {
      const status = form.get('status') ?? '';
      if (!Object.hasOwn(STATUS_LABEL, status)) return html(res, 400, page('Bad input', '<h1>Unknown status.</h1>'));
      clinic.setStatus(seg[2] as string, status);
      return redirect(res, `/?date=${date}`);
    }
    if (seg[1] === 'appointments' && seg[3] === 'move') {
      const time = form.get('time') ?? '';
      const newDate = day(form.get('new_date'));
      if (!/^\d{2}:\d{2}$/.test(time)) return html(res, 400, page('Bad input', '<h1>Give a time as HH:MM.</h1>'));
      clinic.move(seg[2] as string, new Date(localInstant(newDate, time, zone)).toISOString());
      return redirect(res, `/?date=${newDate}`);
    }
    if (seg[1] === 'patients' && seg[2]) {
      const get = (k: string) => form.get(k) ?? undefined;
      clinic.editPatient(seg[2], { phone: get('phone'), email: get('email'), street: get('street'), city: get('city'), state: get('state'), zip: get('zip') });
      return redirect(res, `/patients/${encodeURIComponent(seg[2])}?saved=1`);
    }
  }
  return html(res, 404, page('Not found', '<h1>Not found</h1><p><a href="/">Back to the schedule</a></p>'));
}
