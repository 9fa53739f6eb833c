/** Pure FHIR mapping and config validation of the fhir connector. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFhirConfig } from '../../src/connectors/fhir/config.js';
import { mapAppointment, mapPatient, patientResource, referenceId, statusForWrite, statusProblem } from '../../src/connectors/fhir/mapping.js';
import { retryAfterMs } from '../../src/connectors/fhir/http.js';
import { checkConnectorConfig } from '../../src/connectors/registry.js';
import { EhrsyncError } from '../../src/domain/errors.js';
import { DEFAULT_STATUS_MAP } from '../../src/domain/status.js';

const opts = { mrnSystem: 'urn:mrn', statusExtension: 'urn:native', modeExtension: null };
const patient = {
  resourceType: 'Patient',
  id: 'p1',
  identifier: [{ system: 'urn:other', value: 'X' }, { system: 'urn:mrn', value: '804' }],
  name: [{ use: 'official', given: ['John', 'Q'], family: 'Doe' }],
  birthDate: '1980-02-03',
  gender: 'male',
  telecom: [{ system: 'phone', use: 'mobile', value: '555-1' }, { system: 'phone', use: 'home', value: '555-2' }, { system: 'email', value: 'j@example.com' }],
  address: [{ use: 'home', line: ['1 Main St', 'Apt 2'], city: 'Springfield', state: 'IL', postalCode: '62701' }],
};

describe('fhir mapping', () => {
  it('reads reference ids: relative, absolute, versioned, escaped, and a stray % as written (not a thrown URIError)', () => {
    const ref = (reference: string) => referenceId({ reference }, 'Patient');
    assert.deepEqual(
      [ref('Patient/123'), ref('https://ehr.example/fhir/Patient/123/_history/4'), ref('Patient/a%2Fb'), ref('Patient/50%'), ref('Practitioner/1')],
      ['123', '123', 'a/b', '50%', null],
    );
  });

  it('maps a Patient to Cobalt fields (MRN by system, phones by use, home address)', () => {
    assert.deepEqual(mapPatient(patient, opts), {
      ehr_patient_id: 'p1', mrn: '804', first_name: 'John Q', last_name: 'Doe', dob: '1980-02-03', sex: 'male', phone: '555-2', cell_phone: '555-1', email: 'j@example.com',
      address_street: '1 Main St', address_line2: 'Apt 2', address_city: 'Springfield', address_state: 'IL', address_zip: '62701',
    });
  });

  it('maps an Appointment with its patient and practitioners; the native status wins when configured', () => {
    const a = {
      resourceType: 'Appointment', id: 'a1', status: 'booked', start: '2026-11-05T09:30:00-05:00', end: '2026-11-05T09:50:00-05:00',
      extension: [{ url: 'urn:native', valueCode: '2' }],
      appointmentType: { coding: [{ code: 'FOLLOW-UP' }] },
      participant: [{ actor: { reference: 'Patient/p1' } }, { actor: { reference: 'Practitioner/d1', display: 'Doc' } }, { actor: { reference: 'Practitioner/d2' } }, { actor: { reference: 'Location/3', display: 'Room 3' } }],
    };
    const c = mapAppointment(a, { patients: new Map([['p1', patient]]), practitioners: new Map([['d1', { ehr_id: 'd1', name: 'Dr. Michael Denenberg', npi: null }]]) }, opts);
    assert.deepEqual(c, {
      ehr_appointment_id: 'a1', patient_ehr_id: 'p1', patient_mrn: '804', patient_name: 'John Q Doe', datetime: '2026-11-05T09:30:00-05:00', timezone: null, duration: 20,
      location: 'Room 3', status: '2', provider_ehr_id: 'd1', provider_name: 'Dr. Michael Denenberg', secondary_provider_ehr_id: 'd2', appointment_type: 'FOLLOW-UP', appointment_mode: null,
    });
    assert.equal(statusProblem({ ...a, extension: [] , status: 'bogus' }, opts), 'status "bogus" is not an R4 AppointmentStatus code');
    assert.equal(statusProblem(a, opts), null, 'a native code is open-ended');
  });

  it('chooses FHIR and native codes for a status write', () => {
    const map = { ...DEFAULT_STATUS_MAP, n: 'no-show' };
    assert.deepEqual(statusForWrite('cancelled', map, ['f', '2', 'x', 'n']), { status: 'cancelled', native: 'x' });
    assert.deepEqual(statusForWrite('2', map, ['f', '2', 'x']), { status: 'checked-in', native: '2' });
    assert.deepEqual(statusForWrite('no-show', map, []), { status: 'noshow', native: null });
  });

  it('patient writes change only the given fields', () => {
    const r = patientResource({ phone: '555-9', address_city: 'Shelbyville' }, patient, { mrnSystem: 'urn:mrn' });
    const back = mapPatient(r, opts);
    assert.deepEqual([back.phone, back.cell_phone, back.address_city, back.address_street, back.mrn, back.email], ['555-9', '555-1', 'Shelbyville', '1 Main St', '804', 'j@example.com']);
  });

  it('Retry-After in seconds or as a date', () => {
    assert.equal(retryAfterMs('3', 0), 3000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
    assert.equal(retryAfterMs('soon', 0), null);
  });
});

describe('fhir config', () => {
  it('fills defaults and refuses unknown or bad fields by name', () => {
    const c = parseFhirConfig({ baseUrl: 'https://ehr.example/fhir/' });
    assert.deepEqual([c.baseUrl, c.auth, c.pageSize, c.writes, c.lastUpdated], ['https://ehr.example/fhir', { type: 'none' }, 100, false, 'auto']);
    const bad = (cfg: Record<string, unknown>, field: RegExp) => assert.throws(() => checkConnectorConfig('fhir', { baseUrl: 'https://e.example', ...cfg }), (e: unknown) => e instanceof EhrsyncError && e.code === 'bad_request' && field.test(e.message));
    bad({ pageSzie: 5 }, /config\.pageSzie/);
    bad({ auth: { type: 'bearer' } }, /config\.auth\.token/);
    bad({ auth: { type: 'smart-backend', tokenUrl: 'https://e.example/t', clientId: 'c', privateKey: 'k', alg: 'HS256' } }, /config\.auth\.alg/);
    bad({ auth: { type: 'bearer', token: 't', extra: 1 } }, /config\.auth\.extra/);
    bad({ pageSize: 0 }, /config\.pageSize/);
    bad({ statusMap: { x: 1 } }, /config\.statusMap\.x/);
    checkConnectorConfig('demo', { baseUrl: 'http://127.0.0.1:4010', pageSize: 50 });
  });
});

describe('fhir auth and rate limit', () => {
  it('signs SMART client assertions that verify with the public key (RS384 and ES384)', async () => {
    const { generateKeyPairSync, verify } = await import('node:crypto');
    const { clientAssertion } = await import('../../src/connectors/fhir/auth.js');
    for (const [alg, kp] of [
      ['RS384', generateKeyPairSync('rsa', { modulusLength: 2048 })],
      ['ES384', generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ] as const) {
      const jwt = clientAssertion({ type: 'smart-backend', tokenUrl: 'https://e.example/token', clientId: 'c1', privateKey: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), alg, scope: 's' }, Date.UTC(2030, 0, 1));
      const [h, c, sig] = jwt.split('.') as [string, string, string];
      const ok = verify('sha384', Buffer.from(`${h}.${c}`), alg === 'ES384' ? { key: kp.publicKey, dsaEncoding: 'ieee-p1363' } : kp.publicKey, Buffer.from(sig, 'base64url'));
      assert.ok(ok, `${alg} signature verifies`);
      const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, number>;
      assert.equal(claims.exp! - claims.iat!, 300);
    }
  });

  it('the token bucket lets a burst through, then asks to wait for the next token', async () => {
    const { TokenBucket } = await import('../../src/connectors/fhir/token-bucket.js');
    let now = 0;
    const waits: number[] = [];
    const bucket = new TokenBucket(2, () => now, async (ms) => {
      waits.push(ms);
      now += ms;
    });
    const s = new AbortController().signal;
    await bucket.take(s);
    await bucket.take(s);
    assert.deepEqual(waits, [], 'a burst of the rate');
    await bucket.take(s);
    assert.deepEqual(waits, [500], 'then one token per 1/rate seconds');
  });
});
