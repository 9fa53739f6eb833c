/** A fake FHIR server on 127.0.0.1 port 0 whose answers a test scripts, recording what it was asked. */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted answer; `hang` never answers. */
export type FakeAnswer = { status?: number; headers?: Record<string, string>; body?: unknown; raw?: string; hang?: boolean };

/** A running fake. */
export interface FakeFhir {
  baseUrl: string;
  /** Requests seen: method, path with query, headers. */
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

/** Starts a fake whose `answer` decides each response. */
export async function startFakeFhir(answer: (req: IncomingMessage, n: number) => FakeAnswer): Promise<FakeFhir> {
  const requests: FakeFhir['requests'] = [];
  const hung: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests.push({ method: req.method ?? 'GET', url: (req.url ?? '').replace(/^\/fhir/, ''), headers: req.headers });
      const a = answer(req, requests.length);
      if (a.hang) {
        hung.push(res);
        return;
      }
      const text = a.raw ?? JSON.stringify(a.body ?? {});
      res.writeHead(a.status ?? 200, { 'content-type': a.raw !== undefined ? 'text/html' : 'application/fhir+json', ...a.headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A searchset Bundle of resources. */
export function bundle(resources: unknown[]): Record<string, unknown> {
  return { resourceType: 'Bundle', type: 'searchset', total: resources.length, entry: resources.map((resource) => ({ resource, search: { mode: 'match' } })) };
}
