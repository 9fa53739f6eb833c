/**
 * hl7v2 connections through the API: created without a base URL, their settings checked by name,
 * one connection per sender, and the calls that do not apply to a pushed feed (sync now, writes)
 * refused with a reason instead of failing later.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiWorld, call } from '../helpers/api.js';


const FEED = { connector: 'hl7v2', timezone: 'America/Chicago', config: { sendingApplication: 'EPIC', sendingFacility: 'NORTH', allowFrom: ['10.1.0.0/16'], statusMap: { Arrived: 'checked-in' } } };

describe('api: hl7v2 connections', () => {
  it('creates one without a base URL; its settings show HL7 table 0278 codes and its own', async (t) => {
    const w = await apiWorld(t);
    const created = await call(w, w.alice, 'POST', '/v1/connections', FEED);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.connection.connector, 'hl7v2');
    const settings = await call(w, { ...w.alice, access_token: created.body.access_token as string }, 'GET', '/v1/settings');
    const codes = new Map((settings.body.data.visit_statuses as { code: string; description: string }[]).map((s) => [s.code, s.description]));
    assert.equal(codes.get('Noshow'), 'no-show');
    assert.equal(codes.get('Arrived'), 'checked-in');
  });

  it('refuses bad settings by name, and a second connection for the same sender', async (t) => {
    const w = await apiWorld(t);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...FEED, config: {} }, /config\.sendingApplication is required/],
      [{ ...FEED, config: { sendingApplication: 'X', allowFrom: ['not-an-ip'] } }, /config\.allowFrom/],
      [{ ...FEED, config: { sendingApplication: 'X', defaultCharset: 'EBCDIC' } }, /config\.defaultCharset/],
      [{ ...FEED, config: { sendingApplication: 'X', baseUrl: 'https://x.example' } }, /base_url does not apply to an hl7v2 connection/],
      [{ ...FEED, base_url: 'https://ehr.example/fhir' }, /base_url does not apply/],
      [{ ...FEED, config: { sendingApplication: 'EPIC', sendingFacility: '*' } }, /config\.sendingFacility must be a facility name/],
      [{ ...FEED, config: { sendingApplication: 'EPIC^1.2.3^ISO' } }, /config\.sendingApplication must not contain the HL7 delimiters/],
    ];
    for (const [body, message] of cases) {
      const r = await call(w, w.alice, 'POST', '/v1/connections', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(String(r.body.error?.message ?? r.body.message ?? JSON.stringify(r.body)), message);
    }
    assert.equal((await call(w, w.alice, 'POST', '/v1/connections', FEED)).status, 201);
    const same = await call(w, w.alice, 'POST', '/v1/connections', { ...FEED, config: { sendingApplication: 'epic', sendingFacility: 'north' } });
    assert.equal(same.status, 400, 'the sender is matched case-insensitively: a message must route to one connection');
    assert.match(JSON.stringify(same.body), /already receives this sender's messages/);
    assert.equal((await call(w, w.alice, 'POST', '/v1/connections', { ...FEED, config: { sendingApplication: 'EPIC' } })).status, 201, 'within an account, one connection may take the facilities no other names');
    // Across accounts any overlap is refused: bob naming a facility of alice's "any facility"
    // connection would take that clinic's messages (PHI) from her.
    for (const config of [{ sendingApplication: 'EPIC', sendingFacility: 'SOUTH' }, { sendingApplication: 'Epic' }, { sendingApplication: 'EPIC', sendingFacility: 'NORTH' }]) {
      const taken = await call(w, w.bob, 'POST', '/v1/connections', { ...FEED, config });
      assert.equal(taken.status, 400, JSON.stringify(config));
      assert.match(JSON.stringify(taken.body), /another account already receives messages from this sender/);
      assert.ok(!JSON.stringify(taken.body).includes(w.alice.connectionId), 'the other account\'s connection is not named');
    }
    assert.equal((await call(w, w.bob, 'POST', '/v1/connections', { ...FEED, config: { sendingApplication: 'ATHENA' } })).status, 201);
    const noZone = await call(w, w.bob, 'POST', '/v1/connections', { connector: 'hl7v2', config: { sendingApplication: 'NEXTGEN' } });
    assert.equal(noZone.status, 400);
    assert.match(JSON.stringify(noZone.body), /timezone is required for an hl7v2 connection/);
  });

  it('refuses sync now and writes on a pushed feed, saying why', async (t) => {
    const w = await apiWorld(t, { syncNow: async () => null });
    const created = await call(w, w.alice, 'POST', '/v1/connections', FEED);
    const token = { ...w.alice, access_token: created.body.access_token as string };
    const sync = await call(w, token, 'POST', '/v1/sync');
    assert.equal(sync.status, 400);
    assert.match(JSON.stringify(sync.body), /pushes each change/);
    const write = await call(w, token, 'POST', '/v1/patients', { first_name: 'A', last_name: 'B', dob: '1990-01-01', sex: 'female' });
    assert.equal(write.status, 400);
    assert.match(JSON.stringify(write.body), /cannot write to the EHR/);
  });
});
