/**
 * src/sources/http.ts loads undici's Agent and request() from undici's internal modules (not its
 * index, which loads fetch, WebSocket and the rest). These tests fail when an undici upgrade
 * moves or changes them: the Agent must be the class undici exports, and a request must reach
 * the server as undici's own request() sends it.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import * as undici from 'undici';
import { Agent, lean, request } from '../src/sources/http.ts';

const seen: {
  method?: string | undefined;
  url?: string | undefined;
  auth?: string | undefined;
  body: string;
}[] = [];
const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8').on('data', (d: string) => {
    body += d;
  });
  req.on('end', () => {
    seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ok: true, url: req.url }));
  });
});
let base = '';
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test("http.ts's Agent is the class undici exports, loaded without undici's index", () => {
  assert.equal(lean, true, "undici's internal modules moved: http.ts fell back to the index");
  assert.equal(Agent, undici.Agent);
});

test('request() sends what undici.request() sends and answers the same', async () => {
  const agent = new Agent({ connections: 2 });
  try {
    const url = `${base}/v1/browse/new-releases?limit=50&offset=100&locale=*`;
    const ours = await request(agent, url, { headers: { authorization: 'Bearer t' } });
    const theirs = await undici.request(url, {
      dispatcher: agent,
      headers: { authorization: 'Bearer t' },
    });
    assert.equal(ours.statusCode, 200);
    assert.deepEqual(await ours.body.json(), await theirs.body.json());
    const posted = await request(agent, `${base}/api/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    await posted.body.dump();
    assert.deepEqual(seen, [
      {
        method: 'GET',
        url: '/v1/browse/new-releases?limit=50&offset=100&locale=*',
        auth: 'Bearer t',
        body: '',
      },
      {
        method: 'GET',
        url: '/v1/browse/new-releases?limit=50&offset=100&locale=*',
        auth: 'Bearer t',
        body: '',
      },
      { method: 'POST', url: '/api/token', auth: undefined, body: 'grant_type=client_credentials' },
    ]);
  } finally {
    await agent.close();
  }
});
