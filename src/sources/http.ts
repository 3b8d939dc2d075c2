/**
 * undici's Agent and request(), loaded from their own modules. undici's index also loads fetch,
 * WebSocket, EventSource, the mocks and the cache stores, which a run never uses: about 7 MiB of
 * the process's anonymous memory at rest, in a tool meant for 128 MiB containers (bench/README.md,
 * "Start-up"). These paths are undici's internals: where an upgrade moved them, undici's index is
 * loaded instead, and test/http.test.ts fails (the lean path is gone) before a release does.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';

const require = createRequire(import.meta.url);

type Dispatch = (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** The two modules, or undici's index where an upgrade moved them (it works; it costs memory). */
function load(): { Agent: typeof UndiciAgent; dispatch: Dispatch; lean: boolean } {
  try {
    const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
    const dispatch = require('undici/lib/api/api-request.js') as Dispatch;
    if (typeof Agent === 'function' && typeof dispatch === 'function') {
      return { Agent, dispatch, lean: true };
    }
  } catch {}
  const undici = require('undici') as typeof import('undici');
  return {
    Agent: undici.Agent,
    dispatch: undici.Dispatcher.prototype.request as unknown as Dispatch,
    lean: false,
  };
}

const loaded = load();
export const Agent = loaded.Agent;
export type Agent = UndiciAgent;
const dispatch = loaded.dispatch;
/** Whether undici's two modules were loaded without its index (test/http.test.ts). */
export const lean = loaded.lean;

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
    method: options.method ?? (options.body ? 'PUT' : 'GET'),
  });
}
