/**
 * @module store/statements/projection — the SQL a sync reads before it plans: a connection's
 * projection (appointments, patients, version) and its providers. Pure: statements only.
 */
import type { ProviderRecord } from '../../domain/records.js';
import type { Statement } from '../sql/statement.js';

/** A connection's providers, by name. */
export const selectProviders = (connectionId: string): Statement => ({
  sql: 'SELECT * FROM providers WHERE connection_id = :connection_id ORDER BY name, ehr_id',
  params: { connection_id: connectionId },
});

/** Sets a provider's status, returning its row (none when the provider is not the connection's). */
export const updateProviderStatus = (connectionId: string, providerId: string, status: ProviderRecord['status']): Statement => ({
  sql: 'UPDATE providers SET status = :status WHERE connection_id = :connection_id AND id = :id RETURNING *',
  params: { status, connection_id: connectionId, id: providerId },
});

/** The version of a connection's projection (bumped by every write to it; see SyncCommit.projectionVersion). */
export const selectProjectionVersion = (connectionId: string): Statement => ({
  sql: 'SELECT projection_version FROM connections WHERE id = :id',
  params: { id: connectionId },
});

/** A connection's projected appointments: EHR id, ehrsync id and record. */
export const selectProjectedAppointments = (connectionId: string): Statement => ({
  sql: 'SELECT ehr_id, id, record FROM projection_appointments WHERE connection_id = :connection_id',
  params: { connection_id: connectionId },
});

/** A connection's projected patients: EHR id, ehrsync id and record. */
export const selectProjectedPatients = (connectionId: string): Statement => ({
  sql: 'SELECT ehr_id, id, record FROM projection_patients WHERE connection_id = :connection_id',
  params: { connection_id: connectionId },
});
