/** Named record fixtures and predictable ids for tests. */
import type { AppointmentRecord, PatientRecord } from '../../src/domain/records.js';

/** A checked-in-able follow-up with Dr. Denenberg, as in the seed's appointment.updated example. */
export function appointment(overrides: Partial<AppointmentRecord> = {}): AppointmentRecord {
  return {
    ehr_appointment_id: '482129',
    patient_ehr_id: 'p-804',
    patient_mrn: '804',
    patient_name: 'John Doe',
    datetime: '2025-07-28T16:00:00.000Z',
    timezone: 'America/New_York',
    duration: 20,
    location: '2',
    status: 'booked',
    provider_ehr_id: 'dr-denenberg',
    provider_name: 'Dr. Michael Denenberg',
    secondary_provider_ehr_id: null,
    appointment_type: 'FOLLOW-UP',
    appointment_mode: 'office',
    ...overrides,
  };
}

/** Jane Smith of the seed's patient.updated example. */
export function patient(overrides: Partial<PatientRecord> = {}): PatientRecord {
  return {
    ehr_patient_id: 'p-123456',
    mrn: 'MRN123456',
    first_name: 'Jane',
    last_name: 'Smith',
    dob: '1990-04-01',
    sex: 'female',
    phone: '555-1234',
    cell_phone: null,
    email: 'jane@example.com',
    address_street: '1 Main St',
    address_line2: null,
    address_city: 'Springfield',
    address_state: 'IL',
    address_zip: '62701',
    ...overrides,
  };
}

/** Ids `id-0001`, `id-0002`, ... so expected payloads can be written out literally. */
export function sequentialIds(prefix = 'id-'): () => string {
  let n = 0;
  return () => `${prefix}${String(++n).padStart(4, '0')}`;
}
