/**
 * undici's Agent and request(), loaded from their own modules. undici's index also loads fetch,
 * WebSocket, EventSource, the mocks and the cache stores, which a run never uses: about 7 MiB of
 * the process's anonymous memory at rest, in a tool meant for 128 MiB containers (bench/README.md,
 * "Start-up"). These paths are undici's internals, so the dependency is pinned to one version and
 * test/http.test.ts checks that they are the very functions undici exports.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';

const require = createRequire(import.meta.url);

export const Agent: typeof UndiciAgent = require('undici/lib/dispatcher/agent.js');
export type Agent = UndiciAgent;

const dispatch = require('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** undici's `request(url, { dispatcher, ... })`, as its index builds it for a URL string. */
export function request(
  dispatcher: Dispatcher,
  url: string,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
    method?: Dispatcher.HttpMethod;
  },
): Promise<Dispatcher.ResponseData> {
  const { origin, pathname, search } = new URL(url);
  return dispatch.call(dispatcher, {
    ...options,
    origin,
    path: `${pathname}${search}`,
    method: options.method ?? 'GET',
  });
}
