/**
 * @module demo-ehr/server — `startDemoEhr`: the demo EHR that ships with ehrsync. A small clinic
 * system with its own SQLite file (seeded once, survives restarts), a FHIR R4 API at `<url>/fhir`,
 * a front-desk web page at `<url>/`, an optional staff simulator and an optional HL7 v2 feed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import { DemoClinic } from './clinic.js';
import type { DemoQuirks } from './fhir-api.js';
import { handleFhir } from './fhir-api.js';
import type { DemoHl7FeedOptions } from './hl7-feed.js';
import { DemoHl7Feed } from './hl7-feed.js';
import type { ClinicSize } from './seed.js';
import { DEFAULT_CLINIC_SIZE, seedClinic, seededRandom } from './seed.js';
import type { SimulatedChange, StaffSimulator } from './simulator.js';
import { startSimulator } from './simulator.js';
import { DemoStore } from './store.js';
import { handlePage } from './web-page.js';

/** Options of the demo EHR (all optional but `dataDir`). */
export interface DemoEhrOptions {
  /** Directory of its SQLite file (`demo-ehr.db`); created when missing. */
  dataDir: string;
  /** TCP port; 0 picks a free one. Default 4010. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1 (never all interfaces unless asked). */
  host?: string;
  /** Staff simulator: changes per minute; 0 (default) = off. */
  simulate?: number;
  /** Appointments carry athena-style native status codes (f/2/3/x/n) in an extension. Default false. */
  nativeStatuses?: boolean;
  /** Seed of the fake data and the simulator's randomness. Default 1. */
  seed?: number;
  /** Size of the clinic seeded into a new data directory. Default: 8 providers, 300 patients, ±7 days. */
  clinicSize?: Partial<ClinicSize>;
  /** The clinic's IANA zone (schedule days, booking times). Default America/New_York. */
  timezone?: string;
  /** Real-EHR behaviours to imitate (require a date, no _lastUpdated, fake versionId, hard delete, no paging links). Default none. */
  quirks?: DemoQuirks;
  /** Clock (epoch ms). Default Date.now. */
  now?: () => number;
  /** Randomness of the simulator. Default: seeded from `seed`. */
  random?: () => number;
  /** Told about each simulated change (ids only). */
  onChange?: (c: SimulatedChange) => void;
  /**
   * An HL7 v2 feed of the EHR's changes (SIU and ADT messages, hl7-feed.ts): every change from
   * this start on is recorded in its outbox; `hl7Feed.start()` begins sending. Default none.
   */
  hl7Feed?: DemoHl7FeedOptions;
  logger?: Logger;
}

/** A running demo EHR. */
export interface DemoEhr {
  /** Root URL of the web page, e.g. `http://127.0.0.1:4010`. */
  url: string;
  /** FHIR R4 base, `<url>/fhir`. */
  fhirUrl: string;
  port: number;
  /** The staff simulator (`step()` makes one change now, even when `simulate` is 0). */
  simulator: StaffSimulator;
  /** Front-desk actions, for tests and embedding. */
  clinic: DemoClinic;
  /** Whether this start seeded a new clinic (false: reopened an existing data directory). */
  seeded: boolean;
  /** The HL7 v2 feed, when `hl7Feed` was given (recording; `start()` it to send). */
  hl7Feed: DemoHl7Feed | null;
  /** Stops the simulator, the HL7 feed and the server, closes the database. */
  close(): Promise<void>;
}

/** Starts the demo EHR. */
export async function startDemoEhr(options: DemoEhrOptions): Promise<DemoEhr> {
  const timezone = options.timezone ?? 'America/New_York';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new Error(`timezone is not an IANA time zone: ${JSON.stringify(timezone)}`);
  }
  const log = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const store = new DemoStore(options.dataDir);
  const clinic = new DemoClinic(store, { now, nativeStatuses: options.nativeStatuses ?? false, timezone });
  const seed = options.seed ?? 1;
  const seeded = seedClinic(clinic, seed, { ...DEFAULT_CLINIC_SIZE, ...options.clinicSize });
  // After the seeding: the clinic's past is no feed's business; what staff change from now on is.
  const hl7Feed = options.hl7Feed ? new DemoHl7Feed(clinic, { logger: options.logger, ...options.hl7Feed }) : null;
  let fhirUrl = '';
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://demo.invalid');
    const done = u.pathname === '/fhir' || u.pathname.startsWith('/fhir/')
      ? handleFhir(clinic, { baseUrl: () => fhirUrl, quirks: options.quirks }, req, res, u.pathname.slice(5), u.searchParams)
      : handlePage(clinic, req, res, u.pathname, u.searchParams);
    done.catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
    });
  });
  server.keepAliveTimeout = 5_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4010, host, () => resolve());
  }).catch(async (err: unknown) => {
    // e.g. the port is taken: nothing stays open behind the error.
    await hl7Feed?.stop();
    store.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  fhirUrl = `${url}/fhir`;
  // The staff's choices continue differently on each start (the start minute joins the seed): a
  // resumed demo replaying the first run's script would book the same patients again.
  const simulator = startSimulator(clinic, { rate: options.simulate ?? 0, random: options.random ?? seededRandom(seed * 7919 + Math.floor(clinic.options.now() / 60_000)), onChange: options.onChange });
  log.info({ port, seeded, native_statuses: clinic.options.nativeStatuses }, 'demo EHR started');
  let closed = false;
  return {
    url,
    fhirUrl,
    port,
    simulator,
    clinic,
    seeded,
    hl7Feed,
    async close() {
      if (closed) return;
      closed = true;
      simulator.stop();
      await hl7Feed?.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      store.close();
    },
  };
}
