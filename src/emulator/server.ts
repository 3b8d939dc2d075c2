import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { album, hash } from './catalogue.ts';
import { FaultPlan, type FaultRule, type RateLimit, RateWindow } from './faults.ts';
import { Waiters } from './wait.ts';

export interface EmulatorOptions {
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** Loopback only by default. @default '127.0.0.1' */
  host?: string;
  /** Albums in the new-releases list (and search results); 0 gives empty lists. @default 100 */
  albums?: number;
  /** Catalogue seed. @default 1 */
  seed?: number;
  /** Client credentials the token endpoint accepts. @default 'emulator-id' / 'emulator-secret' */
  clientId?: string;
  clientSecret?: string;
  /** Token lifetime in seconds. @default 3600 */
  tokenTtl?: number;
  /** Delay before each API answer, in ms. @default 0 */
  latencyMs?: number;
  /** Extra random delay 0..jitter ms per API answer (seeded, so repeatable). @default 0 */
  latencyJitterMs?: number;
  /**
   * Extra delay per API answer for one market (new-releases' `country`, search's `market`; ISO
   * codes, any case), in ms, added to `latencyMs`: e.g. `{ SE: 80 }` makes SE's pages come in
   * after DE's, to reorder a run's markets. @default {}
   */
  marketLatencyMs?: Record<string, number>;
  /** A Development Mode app: 403 on new-releases, search limit at most 10. @default false */
  devMode?: boolean;
  /** Injected faults. @default [] */
  faults?: FaultRule[];
  /**
   * Spotify's rate limit: a rolling window answering at most `count` requests per
   * `windowSeconds`, the others 429 with Retry-After; several limits take over from each other
   * by their `after` (requests arrived). Checked on arrival, before latency and faults. @default none
   */
  rateLimit?: RateLimit | RateLimit[];
  /** Omit `total` from paging objects (clients must follow `next`). @default false */
  omitTotal?: boolean;
  /** Render pages once and serve them from memory, so the emulator is never the bottleneck. */
  cachePages?: boolean;
  /**
   * Render every new-releases page (limit 50) into the cache before serving, so a benchmark
   * measures the client, not the emulator's JSON rendering. Implies `cachePages`.
   */
  prerender?: boolean;
  /** Album indexes served without `name` (a record the client must not pass on silently). */
  malformed?: number[];
  /**
   * Markets whose list is empty (new-releases' `country`, search's `market`; ISO codes, any
   * case): one page with `total` 0, no items and no `next`. @default []
   */
  emptyMarkets?: string[];
  /**
   * Search queries that match nothing, compared with `q` as sent (after URL decoding): one page
   * with `total` 0, no items and no `next`. The emulator does not interpret queries: every other
   * non-empty `q` (`tag:new`, `year:2026`, …) matches the whole catalogue. @default []
   */
  emptyQueries?: string[];
}

export interface RequestRecord {
  /** Arrival time, `Date.now()`. */
  at: number;
  /** The path, e.g. `/v1/browse/new-releases`. */
  path: string;
  /** The query string as received, without `?`, e.g. `country=SE&locale=*&offset=50&limit=50`. */
  query: string;
  /** The `offset` parameter (0 without one). */
  offset: number;
  /** The status answered; 0 until then, and when no answer was sent (a reset, or the client left). */
  status: number;
  /**
   * When `status` was filled in, as a place among the API requests so far (1 for the first): the
   * order the answers went out in, which arrival order (`log`) and `at` (whole ms) cannot tell.
   * 0 until then.
   */
  answered: number;
}

/** A hold on API answers, from {@link Emulator.hold}. */
export interface Hold {
  /** Requests it holds right now (a request whose client went away is no longer held). */
  readonly held: number;
  /** Lets the held requests go on to be answered as usual, and holds no more. */
  release(): void;
}

/** What the emulator saw; tests assert on these counts. */
export interface EmulatorStats {
  tokenRequests: number;
  apiRequests: number;
  inFlight: number;
  maxInFlight: number;
  faultsFired: number;
  /** Requests refused with 429 by the rolling-window rate limit (injected 429 faults not included). */
  rateLimited: number;
  byStatus: Record<number, number>;
  /** API requests in arrival order (the first 100 000), each filled in with its status when answered. */
  log: RequestRecord[];
}

const SEARCH_CAP = 1000;

/**
 * A Spotify-compatible Web API on loopback, following SPOTIFY_API.md: client-credentials tokens,
 * `/v1/browse/new-releases` and `/v1/search?type=album` paging with alphabetical keys, Spotify's
 * error bodies, and fault injection.
 */
export class Emulator {
  readonly stats: EmulatorStats = {
    tokenRequests: 0,
    apiRequests: 0,
    inFlight: 0,
    maxInFlight: 0,
    faultsFired: 0,
    rateLimited: 0,
    byStatus: {},
    log: [],
  };
  readonly #options: Required<
    Omit<
      EmulatorOptions,
      'faults' | 'malformed' | 'emptyMarkets' | 'emptyQueries' | 'rateLimit' | 'marketLatencyMs'
    >
  >;
  readonly #marketLatency: Map<string, number>;
  readonly #rateWindow: RateWindow;
  readonly #malformed: Set<number>;
  readonly #emptyMarkets: Set<string>;
  readonly #emptyQueries: Set<string>;
  readonly #faults: FaultPlan;
  readonly #tokens = new Map<string, number>();
  readonly #pageCache = new Map<string, Buffer>();
  readonly #holds: {
    match: (request: RequestRecord) => boolean;
    held: number;
    released: Promise<void>;
  }[] = [];
  readonly #server: Server;
  readonly #waiters = new Waiters(() => this.stats);
  #url = '';
  #answers = 0;

  constructor(options: EmulatorOptions = {}) {
    this.#options = {
      port: 0,
      host: '127.0.0.1',
      albums: 100,
      seed: 1,
      clientId: 'emulator-id',
      clientSecret: 'emulator-secret',
      tokenTtl: 3600,
      latencyMs: 0,
      latencyJitterMs: 0,
      devMode: false,
      omitTotal: false,
      cachePages: false,
      prerender: false,
      ...options,
    };
    const { albums } = this.#options;
    if (!Number.isSafeInteger(albums) || albums < 0) {
      throw new RangeError(`emulator option albums must be an integer >= 0, got ${albums}`);
    }
    for (const market of options.emptyMarkets ?? []) {
      if (!/^[A-Za-z]{2}$/.test(market)) {
        throw new RangeError(
          `emulator option emptyMarkets must hold ISO market codes, got ${JSON.stringify(market)}`,
        );
      }
    }
    if (this.#options.prerender) this.#options.cachePages = true;
    this.#faults = new FaultPlan(options.faults ?? []);
    this.#rateWindow = new RateWindow(
      options.rateLimit === undefined ? [] : [options.rateLimit].flat(),
    );
    this.#malformed = new Set(options.malformed);
    this.#emptyMarkets = new Set(options.emptyMarkets?.map((m) => m.toUpperCase()));
    this.#emptyQueries = new Set(options.emptyQueries);
    this.#marketLatency = new Map();
    for (const [market, ms] of Object.entries(options.marketLatencyMs ?? {})) {
      if (!/^[A-Za-z]{2}$/.test(market) || !Number.isInteger(ms) || ms < 0) {
        throw new RangeError(
          `emulator option marketLatencyMs must map ISO market codes to whole ms >= 0, got ${JSON.stringify(market)}: ${ms}`,
        );
      }
      this.#marketLatency.set(market.toUpperCase(), ms);
    }
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent)
          this.#json(res, 500, { error: { status: 500, message: String(error) } });
      });
    });
    this.#server.keepAliveTimeout = 60_000;
  }

  /** Base URL, e.g. http://127.0.0.1:40123 — use it as both SPOTIFY_API_URL and SPOTIFY_ACCOUNTS_URL. */
  get url(): string {
    return this.#url;
  }

  get clientId(): string {
    return this.#options.clientId;
  }

  get clientSecret(): string {
    return this.#options.clientSecret;
  }

  /**
   * Holds the answers to API requests that `match` (all by default) until `release()`: a Spotify
   * that takes requests and does not answer, so a test knows exactly which requests a client has
   * out. Requests are counted and logged on arrival and their token is checked; the hold comes
   * after `latencyMs` and before faults and the answer. A request waits for the first unreleased
   * hold that matches it; if its client closes the connection, it is dropped unanswered.
   */
  hold(match: (request: RequestRecord) => boolean = () => true): Hold {
    let resolve = () => {};
    const released = new Promise<void>((r) => {
      resolve = r;
    });
    const entry = { match, held: 0, released };
    this.#holds.push(entry);
    return {
      get held() {
        return entry.held;
      },
      release: () => {
        const at = this.#holds.indexOf(entry);
        if (at !== -1) this.#holds.splice(at, 1);
        resolve();
      },
    };
  }

  /**
   * Resolves once `condition` holds on the stats: checked now, then after each API request's
   * arrival, answer (its status in the log), end of connection, and each change of a hold's
   * `held`. With `signal`, rejects when it aborts first (e.g. when the client under test exits).
   */
  waitFor(
    condition: (stats: EmulatorStats) => boolean,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    return this.#waiters.waitFor(condition, options);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => resolve());
    });
    const { port } = this.#server.address() as AddressInfo;
    const host = this.#options.host.includes(':') ? `[${this.#options.host}]` : this.#options.host;
    this.#url = `http://${host}:${port}`;
    if (this.#options.prerender) {
      for (let offset = 0; offset < this.#options.albums; offset += 50) {
        this.#page(
          new URL(`/v1/browse/new-releases?limit=50&offset=${offset}`, this.#url),
          offset,
          50,
          false,
        );
      }
    }
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.#url);
    if (url.pathname === '/api/token') return this.#token(req, res);
    if (url.pathname === '/v1/browse/new-releases' || url.pathname === '/v1/search') {
      this.stats.apiRequests++;
      this.stats.inFlight++;
      this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
      res.once('close', () => {
        this.stats.inFlight--;
        this.#waiters.notify();
      });
      return this.#api(req, res, url);
    }
    this.#json(res, 404, { error: { status: 404, message: 'Service not found' } });
  }

  async #token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.tokenRequests++;
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    let id = form.get('client_id') ?? '';
    let secret = form.get('client_secret') ?? '';
    const auth = req.headers.authorization ?? '';
    if (auth.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString();
      const colon = decoded.indexOf(':');
      id = decoded.slice(0, colon);
      secret = decoded.slice(colon + 1);
    }
    if (req.method !== 'POST' || form.get('grant_type') !== 'client_credentials') {
      return this.#json(res, 400, {
        error: 'unsupported_grant_type',
        error_description: 'grant_type parameter is missing',
      });
    }
    if (id !== this.#options.clientId) {
      return this.#json(res, 400, { error: 'invalid_client', error_description: 'Invalid client' });
    }
    if (secret !== this.#options.clientSecret) {
      return this.#json(res, 400, {
        error: 'invalid_client',
        error_description: 'Invalid client secret',
      });
    }
    const token = randomBytes(24).toString('base64url');
    this.#tokens.set(token, Date.now() + this.#options.tokenTtl * 1000);
    this.#json(res, 200, {
      access_token: token,
      token_type: 'Bearer',
      expires_in: this.#options.tokenTtl,
    });
  }

  async #api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const o = this.#options;
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const search = url.pathname === '/v1/search';
    const entry: RequestRecord = {
      at: Date.now(),
      path: url.pathname,
      query: url.search.slice(1),
      offset,
      status: 0,
      answered: 0,
    };
    if (this.stats.log.length < 100_000) this.stats.log.push(entry);
    const record = (status: number) => {
      this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
      entry.status = status;
      entry.answered = ++this.#answers;
      this.#waiters.notify();
    };
    this.#waiters.notify();
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const expires = token === undefined ? undefined : this.#tokens.get(token);
    if (token === undefined || expires === undefined || expires <= Date.now()) {
      record(401);
      const message =
        token === undefined
          ? 'No token provided'
          : expires === undefined
            ? 'Invalid access token'
            : 'The access token expired';
      res.setHeader('www-authenticate', 'Bearer realm="spotify"');
      return this.#json(res, 401, { error: { status: 401, message } });
    }

    // Like Spotify's gateway: counted on arrival; a refused request does not use up the window.
    const retryAfter = this.#rateWindow.admit(entry.at);
    if (retryAfter !== undefined) {
      this.stats.rateLimited++;
      record(429);
      res.setHeader('retry-after', String(retryAfter));
      return this.#json(res, 429, { error: { status: 429, message: 'API rate limit exceeded' } });
    }

    // Like the real service: the token is checked on arrival; the answer takes its time.
    const market = url.searchParams.get('country') ?? url.searchParams.get('market') ?? '';
    const delay =
      o.latencyMs +
      (this.#marketLatency.get(market.toUpperCase()) ?? 0) +
      (o.latencyJitterMs ? hash(o.seed, this.stats.apiRequests, 99) % (o.latencyJitterMs + 1) : 0);
    if (delay > 0) await sleep(delay);

    const hold = this.#holds.find((h) => h.match(entry));
    if (hold) {
      let gone = false;
      const left = new Promise<void>((resolve) =>
        res.once('close', () => {
          gone = true;
          resolve();
        }),
      );
      hold.held++;
      this.#waiters.notify();
      await Promise.race([hold.released, left]);
      hold.held--;
      this.#waiters.notify();
      if (gone) return;
    }

    const fault = this.#faults.pick(
      offset,
      url.searchParams.get('country') ?? url.searchParams.get('market') ?? undefined,
    );
    if (fault) {
      this.stats.faultsFired++;
      if (this.#inject(fault, res, record, token)) return;
    }

    if (!search && o.devMode) {
      record(403);
      return this.#json(res, 403, { error: { status: 403, message: 'Forbidden' } });
    }
    const rawLimit = url.searchParams.get('limit');
    const limit = rawLimit === null ? (search ? 5 : 20) : Number(rawLimit);
    const maxLimit = search && o.devMode ? 10 : 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) {
      record(400);
      return this.#json(res, 400, { error: { status: 400, message: 'Invalid limit' } });
    }
    if (!Number.isInteger(offset) || offset < 0 || (search && offset + limit > SEARCH_CAP)) {
      record(400);
      return this.#json(res, 400, { error: { status: 400, message: 'Invalid offset' } });
    }
    if (search && (url.searchParams.get('type') !== 'album' || !url.searchParams.get('q'))) {
      record(400);
      return this.#json(res, 400, { error: { status: 400, message: 'Bad search type field' } });
    }
    record(200);
    const body = this.#page(url, offset, limit, search);
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
    });
    res.end(body);
  }

  /** Applies a fault; returns false when the request should then be answered normally. */
  #inject(
    fault: FaultRule,
    res: ServerResponse,
    record: (status: number) => void,
    token: string,
  ): boolean {
    switch (fault.kind) {
      case 'reset':
        record(0);
        res.socket?.destroy();
        return true;
      case 'truncate': {
        record(200);
        // Promise a full body, send half of a real one, then drop the connection.
        const body = Buffer.from(
          JSON.stringify({ albums: { href: this.#url, items: [album(1, 0, this.#url)] } }),
        );
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': body.length,
        });
        res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
        return true;
      }
      case 'expire-token':
        this.#tokens.delete(token);
        record(401);
        res.setHeader('www-authenticate', 'Bearer realm="spotify"');
        this.#json(res, 401, { error: { status: 401, message: 'The access token expired' } });
        return true;
      case '429': {
        record(429);
        const retryAfter = fault.retryAfter === undefined ? '1' : fault.retryAfter;
        if (retryAfter !== null) res.setHeader('retry-after', retryAfter);
        if (fault.emptyBody) {
          res.writeHead(429).end();
        } else {
          this.#json(res, 429, { error: { status: 429, message: 'API rate limit exceeded' } });
        }
        return true;
      }
      case 'quota': {
        // The Development Mode daily quota (since July 2026): hours to wait, and a reason.
        record(429);
        const retryAfter = fault.retryAfter === undefined ? '48925' : fault.retryAfter;
        if (retryAfter !== null) res.setHeader('retry-after', retryAfter);
        this.#json(res, 429, {
          error: { status: 429, message: 'Too many requests', reason: 'QUOTA_EXCEEDED' },
        });
        return true;
      }
      default: {
        const status = Number(fault.kind);
        record(status);
        const messages: Record<number, string> = {
          400: 'Bad request',
          403: 'Forbidden',
          404: 'Not found',
          500: 'Server error',
          502: 'Bad gateway',
          503: 'Service unavailable',
          504: 'Gateway timeout',
        };
        // Spotify's error bodies sometimes come with odd spacing.
        const body = `{"error" : {\n  "status" : ${status},\n  "message" : "${messages[status] ?? 'Error'}"\n}}`;
        res.writeHead(status, { 'content-type': 'application/json' }).end(body);
        return true;
      }
    }
  }

  #page(url: URL, offset: number, limit: number, search: boolean): Buffer {
    const market = url.searchParams.get(search ? 'market' : 'country') ?? '';
    const query = search ? (url.searchParams.get('q') ?? '') : '';
    const key = `${url.pathname}|${offset}|${limit}|${market}|${query}`;
    const cached = this.#pageCache.get(key);
    if (cached) return cached;
    const o = this.#options;
    const empty =
      this.#emptyMarkets.has(market.toUpperCase()) || (search && this.#emptyQueries.has(query));
    const total = empty ? 0 : o.albums;
    const api = `${this.#url}${url.pathname}`;
    const keep = new URLSearchParams(url.searchParams);
    keep.delete('offset');
    keep.delete('limit');
    // Spotify's next/previous carry parameters the client never sent.
    if (!search && !keep.has('locale')) keep.set('locale', '*');
    const link = (at: number) => {
      const params = new URLSearchParams(keep);
      params.set('offset', String(at));
      params.set('limit', String(limit));
      return `${api}?${params}`;
    };
    const end = search ? Math.min(total, SEARCH_CAP) : total;
    const items = [];
    // Each market lists the catalogue from its own starting point: markets overlap in part,
    // like real new-releases lists (dedupe across markets has something to do).
    const shift = marketShift(market, o.albums);
    for (let i = offset; i < Math.min(offset + limit, end); i++) {
      const item: Partial<ReturnType<typeof album>> = album(o.seed, i + shift, this.#url);
      if (this.#malformed.has(i)) delete item.name;
      items.push(item);
    }
    const paging: Record<string, unknown> = {
      href: link(offset),
      items,
      limit,
      next: offset + limit < end ? link(offset + limit) : null,
      offset,
      previous: offset > 0 ? link(Math.max(0, offset - limit)) : null,
    };
    if (!o.omitTotal) paging.total = total;
    const body = Buffer.from(JSON.stringify({ albums: paging }));
    if (o.cachePages) this.#pageCache.set(key, body);
    return body;
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }
}

/** Where a market's list starts in the catalogue: 0 without a market, else 0–3 quarters in. */
export function marketShift(market: string, albums: number): number {
  if (market === '') return 0;
  const code = (market.charCodeAt(0) << 8) | market.charCodeAt(1);
  return (hash(7, code) % 4) * Math.floor(albums / 4);
}

/** Starts an emulator; the caller stops it. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  return new Emulator(options).start();
}
