/** Every connector passes the same contract: memory, the demo EHR over HTTP (FHIR and native statuses), and the fhir connector against Medplum's FHIR router over HTTP. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Appointment, Patient, Practitioner } from '@medplum/fhirtypes';
import { MemoryConnector } from '../../src/connectors/memory.js';
import { createConnector } from '../../src/connectors/registry.js';
import { DEMO_MRN_SYSTEM } from '../../src/domain/demo-ehr-profile.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { practitionerDisplay } from '../../src/demo-ehr/clinic.js';
import type { DemoQuirks } from '../../src/demo-ehr/fhir-api.js';
import { startDemoEhr } from '../../src/demo-ehr/server.js';
import type { ContractHarness } from '../contract/connector-contract.js';
import { connectorContract } from '../contract/connector-contract.js';
import { startMedplum } from '../helpers/medplum-server.js';

const box = new SecretBox(SecretBox.generateKey());

connectorContract('memory', async () => {
  const ehr = new MemoryConnector();
  ehr.providers.set('dr-1', { ehr_id: 'dr-1', name: 'Dr. Memory One', npi: null });
  let n = 0;
  return {
    connector: ehr,
    provider: { id: 'dr-1', name: 'Dr. Memory One' },
    pageSize: 5,
    async addPatient(p) {
      const id = `p-${++n}`;
      ehr.putPatient({ ehr_patient_id: id, mrn: p.mrn, first_name: p.first, last_name: p.last, phone: p.phone, dob: null, sex: null, cell_phone: null, email: null, address_street: null, address_line2: null, address_city: null, address_state: null, address_zip: null });
      return id;
    },
    async addAppointment(a) {
      const id = `a-${++n}`;
      const p = (await ehr.readPatients({ ids: [a.patientId] }, { signal: new AbortController().signal })).patients[0]!;
      ehr.putAppointment({ ehr_appointment_id: id, patient_ehr_id: a.patientId, patient_mrn: p.mrn, patient_name: `${String(p.first_name)} ${String(p.last_name)}`, datetime: a.start, timezone: null, duration: a.minutes, location: null, status: 'booked', provider_ehr_id: 'dr-1', provider_name: 'Dr. Memory One', secondary_provider_ehr_id: null, appointment_type: a.type, appointment_mode: 'office' });
      return id;
    },
    async setStatus(id, status) {
      ehr.updateAppointment(id, { status });
    },
    async move(id, start) {
      ehr.updateAppointment(id, { datetime: start });
    },
    async deleteAppointment(id) {
      ehr.deleteAppointment(id);
    },
    async editPhone(id, phone) {
      ehr.updatePatient(id, { phone });
    },
    async close() {},
  };
});

async function demoHarness(nativeStatuses: boolean, quirks?: DemoQuirks): Promise<ContractHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'ehrsync-demo-'));
  const ehr = await startDemoEhr({ dataDir: dir, port: 0, nativeStatuses, quirks, clinicSize: { providers: 2, patients: 5, daysBack: 0, daysAhead: 0, perProviderDay: 1 } });
  const dr = ehr.clinic.all('Practitioner')[0]!;
  // With quirks, `_lastUpdated` support is detected from metadata rather than assumed.
  const connector = createConnector({ connector: 'demo', config: { baseUrl: ehr.url, pageSize: 5, ...(quirks ? { lastUpdated: 'auto' } : {}) } }, { secretBox: box });
  const { clinic } = ehr;
  return {
    connector,
    provider: { id: dr.id, name: practitionerDisplay(dr) },
    pageSize: 5,
    async addPatient(p) {
      const id = clinic.store.nextId('Patient');
      clinic.save({ resourceType: 'Patient', id, identifier: [{ system: DEMO_MRN_SYSTEM, value: p.mrn }], name: [{ given: [p.first], family: p.last }], telecom: [{ system: 'phone', use: 'home', value: p.phone }] });
      return id;
    },
    async addAppointment(a) {
      return clinic.book({ patientId: a.patientId, practitionerId: dr.id, start: a.start, minutes: a.minutes, type: a.type, location: 'Room 1', mode: 'office' }).id;
    },
    async setStatus(id, status) {
      clinic.setStatus(id, status);
    },
    async move(id, start) {
      clinic.move(id, start);
    },
    async deleteAppointment(id) {
      const res = await fetch(`${ehr.fhirUrl}/Appointment/${id}`, { method: 'DELETE' });
      if (res.status !== 204) throw new Error(`DELETE answered ${res.status}`);
    },
    async editPhone(id, phone) {
      clinic.editPatient(id, { phone });
    },
    async close() {
      await ehr.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

connectorContract('demo (FHIR statuses, over HTTP)', () => demoHarness(false));
connectorContract('demo (native athena-style statuses, over HTTP)', () => demoHarness(true));
connectorContract('demo with real-EHR quirks (date required, no _lastUpdated, fake versionId, hard delete, no paging links)', () =>
  demoHarness(false, { requireDate: true, noLastUpdated: true, fakeVersionId: true, hardDelete: true, noLinks: true }),
);

connectorContract('fhir against Medplum fhir-router 4.5.2 MemoryRepository over HTTP', async () => {
  const server = await startMedplum();
  const repo = server.repo;
  const dr = await repo.createResource<Practitioner>({ resourceType: 'Practitioner', name: [{ prefix: ['Dr.'], given: ['Mel'], family: 'Plum' }] });
  const connector = createConnector({ connector: 'fhir', config: { baseUrl: server.baseUrl, mrnSystem: 'urn:test:mrn', pageSize: 5, lastUpdated: true, writes: true } }, { secretBox: box });
  return {
    connector,
    provider: { id: dr.id as string, name: 'Dr. Mel Plum' },
    pageSize: 5,
    async addPatient(p) {
      const r = await repo.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: 'urn:test:mrn', value: p.mrn }], name: [{ given: [p.first], family: p.last }], telecom: [{ system: 'phone', use: 'home', value: p.phone }] });
      return r.id as string;
    },
    async addAppointment(a) {
      const start = Date.parse(a.start);
      const r = await repo.createResource<Appointment>({
        resourceType: 'Appointment',
        status: 'booked',
        start: new Date(start).toISOString(),
        end: new Date(start + a.minutes * 60_000).toISOString(),
        minutesDuration: a.minutes,
        appointmentType: { coding: [{ code: a.type }] },
        participant: [{ actor: { reference: `Patient/${a.patientId}` }, status: 'accepted' }, { actor: { reference: `Practitioner/${dr.id}` }, status: 'accepted' }],
      });
      return r.id as string;
    },
    async setStatus(id, status) {
      const r = await repo.readResource<Appointment>('Appointment', id);
      await repo.updateResource<Appointment>({ ...r, status });
    },
    async move(id, start) {
      const r = await repo.readResource<Appointment>('Appointment', id);
      const ms = Date.parse(start);
      await repo.updateResource<Appointment>({ ...r, start: new Date(ms).toISOString(), end: new Date(ms + (r.minutesDuration ?? 20) * 60_000).toISOString() });
    },
    async deleteAppointment(id) {
      await repo.deleteResource('Appointment', id);
    },
    async editPhone(id, phone) {
      const r = await repo.readResource<Patient>('Patient', id);
      await repo.updateResource<Patient>({ ...r, telecom: [{ system: 'phone', use: 'home', value: phone }] });
    },
    close: () => server.close(),
  };
});
