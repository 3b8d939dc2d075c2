import type { SourceItem } from '../core/records.ts';

/**
 * How much the report's aggregates may hold, whatever the size of the pull. Everything else they
 * keep is a fixed number of counters (bench/report.ts measures the bytes of each kind).
 */
export const REPORT_LIMITS = {
  /**
   * Artists counted exactly; past this many distinct artists the top list comes from a
   * Space-Saving summary of this many counters (each count then carries its error bound).
   */
  artists: 10_000,
  /**
   * Distinct albums whose markets are remembered for the overlap between markets; past this
   * many, a uniform hash sample of at most this many (the counts are scaled up, and say so).
   */
  overlapAlbums: 20_000,
  /** Album types kept apart; others are counted as `(other)`. */
  albumTypes: 16,
  /** Tracks per album counted one by one up to this; longer albums share the last bin. */
  maxTracks: 40,
  /** Day-precision releases this many days before the run (and up to 14 after) shown by day. */
  recentDays: 56,
  /** Years kept apart: from this one to the run's year + 5; others are counted as outside. */
  firstYear: 1900,
} as const;

const FUTURE_DAYS = 14;
const DAY_MS = 86_400_000;

type Json = Record<string, unknown>;

/** Counts per year of release, split by the precision Spotify gave the date. */
export interface YearCount {
  year: number;
  day: number;
  month: number;
  year_only: number;
}

/** One artist of the top list: `albums` is exact when `error` is 0, else at most `error` high. */
export interface ArtistCount {
  id: string;
  name: string;
  albums: number;
  error: number;
}

/** What the aggregates hold at the end of the pass: plain data, ready for charts and tables. */
export interface Aggregates {
  /**
   * Albums the run passed on to its outputs: after rejects and dedupe, with `--new-only` the
   * new ones only (without dedupe, an album in two markets counts twice). Releases, types,
   * tracks and artists count these.
   */
  albums: number;
  /** Albums the markets listed, before rejects, dedupe and `--new-only` (each listing once). */
  listed: number;
  releases: {
    /** Day-precision dates from `recentFrom` to `recentTo`, by day (days with none left out). */
    recent: { date: string; albums: number }[];
    recentFrom: string;
    recentTo: string;
    years: YearCount[];
    /** `0000`: Spotify's "unknown" date, counted apart. */
    unknownYear: number;
    /** Years before {@link REPORT_LIMITS.firstYear} or more than 5 after the run's. */
    outsideYears: number;
    /** Not a date Spotify sends (missing, or not YYYY[-MM[-DD]]). */
    unparseable: number;
  };
  albumTypes: { type: string; albums: number }[];
  tracks: { tracks: string; albums: number }[];
  /** Albums without a whole `total_tracks`. */
  tracksMissing: number;
  artists: {
    top: ArtistCount[];
    /** Distinct artists (exact while {@link exact}). */
    distinct: number;
    /** Counters were evicted: counts are upper bounds with the stated error. */
    exact: boolean;
    /** Artist appearances counted (one per album × artist). */
    appearances: number;
  };
  /**
   * Per market: the albums it listed (before rejects, dedupe and `--new-only`), and those of
   * them written under it (with `--new-only`: new to the state and first seen in this market).
   */
  markets: { market: string; listed: number; written: number }[];
  /** Between the markets' lists as listed (before rejects, dedupe and `--new-only`). */
  overlap: {
    /** Sampling rate: 1 while every distinct album is remembered. */
    theta: number;
    /** Distinct albums over all markets (estimated when theta < 1). */
    distinctAlbums: number;
    /** Distinct albums listed in both markets (`a === b`: in that market). */
    pairs: { a: string; b: string; albums: number }[];
    /** Distinct albums by how many markets list them. */
    byMarketCount: { markets: number; albums: number }[];
  } | null;
}

/** FNV-1a, 32 bits: a cheap, well-spread hash of an id, for sampling. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** One artist's counter, in the list of its count's bucket. */
interface Counter {
  id: string;
  name: string;
  /** At most this much above the truth (0 while no counter was ever evicted). */
  error: number;
  bucket: Bucket;
  prev: Counter | undefined;
  next: Counter | undefined;
}

/** Every counter with one count, in a list ordered by count (the stream-summary). */
interface Bucket {
  count: number;
  head: Counter | undefined;
  prev: Bucket | undefined;
  next: Bucket | undefined;
}

/**
 * The most frequent artists in bounded memory: the Space-Saving algorithm (Metwally, Agrawal
 * and El Abbadi, 2005) on its stream-summary, so every step is O(1). Up to `capacity` distinct
 * artists every count is exact. Once full, a new artist takes the counter of one with the
 * smallest count `m`, starting at `m + 1` with error `m`: each reported count is at most `error`
 * above the truth, and every artist with more than N / capacity albums is in the list. Counters
 * sit in buckets of equal count, the buckets in a list by count, so the smallest is the first.
 */
export class TopArtists {
  readonly #capacity: number;
  readonly #counters = new Map<string, Counter>();
  /** The bucket with the smallest count. */
  #min: Bucket | undefined;
  #evicted = false;
  appearances = 0;

  constructor(capacity: number = REPORT_LIMITS.artists) {
    this.#capacity = capacity;
  }

  add(id: string, name: string): void {
    this.appearances++;
    const counter = this.#counters.get(id);
    if (counter !== undefined) {
      this.#increment(counter);
      return;
    }
    if (this.#counters.size < this.#capacity) {
      const ones: Bucket =
        this.#min?.count === 1
          ? this.#min
          : { count: 1, head: undefined, prev: undefined, next: this.#min };
      if (ones !== this.#min) {
        if (this.#min) this.#min.prev = ones;
        this.#min = ones;
      }
      const fresh: Counter = { id, name, error: 0, bucket: ones, prev: undefined, next: undefined };
      this.#attach(fresh, ones);
      this.#counters.set(id, fresh);
      return;
    }
    // Full: the newest counter of the smallest count makes room, and counts on from there.
    const min = this.#min as Bucket;
    const victim = min.head as Counter;
    this.#counters.delete(victim.id);
    victim.id = id;
    victim.name = name;
    victim.error = min.count;
    this.#counters.set(id, victim);
    this.#evicted = true;
    this.#increment(victim);
  }

  #attach(counter: Counter, bucket: Bucket): void {
    counter.bucket = bucket;
    counter.prev = undefined;
    counter.next = bucket.head;
    if (bucket.head) bucket.head.prev = counter;
    bucket.head = counter;
  }

  /** Moves a counter from its bucket to the next count's (made when missing). */
  #increment(counter: Counter): void {
    const from = counter.bucket;
    let to = from.next;
    if (to === undefined || to.count !== from.count + 1) {
      to = { count: from.count + 1, head: undefined, prev: from, next: to };
      if (to.next) to.next.prev = to;
      from.next = to;
    }
    // Out of the old bucket; an empty bucket leaves the list.
    if (counter.prev) counter.prev.next = counter.next;
    else from.head = counter.next;
    if (counter.next) counter.next.prev = counter.prev;
    if (from.head === undefined) {
      if (from.prev) from.prev.next = from.next;
      else this.#min = from.next;
      if (from.next) from.next.prev = from.prev;
    }
    this.#attach(counter, to);
  }

  /** The `n` largest counts, largest first (ties by name, so the order is stable). */
  top(n: number): ArtistCount[] {
    return [...this.#counters.values()]
      .map(({ id, name, error, bucket }) => ({ id, name, albums: bucket.count, error }))
      .sort((a, b) => b.albums - a.albums || a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1))
      .slice(0, n);
  }

  get distinct(): number {
    return this.#counters.size;
  }

  /** No counter was ever evicted: every count is exact. */
  get exact(): boolean {
    return !this.#evicted;
  }
}

/**
 * Which markets list each distinct album, for the overlap between markets. Every album is kept
 * while there are at most `capacity`; past that, only albums whose id hashes below a threshold
 * θ (a uniform sample, the idea of a KMV/theta sketch), halving θ whenever the sample is full
 * again, and counts are scaled by 1/θ. Each album keeps one bit per market.
 */
export class MarketOverlap {
  readonly #capacity: number;
  readonly #markets: string[] = [];
  readonly #marketIndex = new Map<string, number>();
  /** Each sampled album's markets, one bit each: a number up to 30 markets, else a bigint. */
  readonly #sample = new Map<string, number | bigint>();
  /** Ids whose hash is below this are sampled: 2^32 means all of them. */
  #limit = 2 ** 32;

  constructor(capacity: number = REPORT_LIMITS.overlapAlbums, markets: readonly string[] = []) {
    this.#capacity = capacity;
    for (const market of markets) this.#market(market);
  }

  #market(market: string): number {
    let m = this.#marketIndex.get(market);
    if (m === undefined) {
      m = this.#markets.length;
      this.#markets.push(market);
      this.#marketIndex.set(market, m);
    }
    return m;
  }

  add(id: string, market: string): void {
    const m = this.#market(market);
    if (this.#limit < 2 ** 32 && fnv1a(id) >= this.#limit) return;
    const mask = this.#sample.get(id) ?? 0;
    this.#sample.set(
      id,
      typeof mask === 'number' && m < 30 ? mask | (1 << m) : BigInt(mask) | (1n << BigInt(m)),
    );
    while (this.#sample.size > this.#capacity) {
      this.#limit /= 2;
      for (const key of this.#sample.keys()) {
        if (fnv1a(key) >= this.#limit) this.#sample.delete(key);
      }
    }
  }

  get theta(): number {
    return this.#limit / 2 ** 32;
  }

  summary(): NonNullable<Aggregates['overlap']> {
    const n = this.#markets.length;
    const pair = new Float64Array(n * n);
    const byCount = new Float64Array(n + 1);
    for (const mask of this.#sample.values()) {
      const present: number[] = [];
      const bits = BigInt(mask);
      for (let i = 0; i < n; i++) if ((bits >> BigInt(i)) & 1n) present.push(i);
      byCount[present.length] = (byCount[present.length] as number) + 1;
      for (const a of present)
        for (const b of present) pair[a * n + b] = (pair[a * n + b] as number) + 1;
    }
    const scale = (count: number) => Math.round(count / this.theta);
    const pairs: { a: string; b: string; albums: number }[] = [];
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        pairs.push({
          a: this.#markets[a] as string,
          b: this.#markets[b] as string,
          albums: scale(pair[a * n + b] as number),
        });
      }
    }
    return {
      theta: this.theta,
      distinctAlbums: scale(this.#sample.size),
      pairs,
      byMarketCount: [...byCount]
        .map((albums, markets) => ({ markets, albums: scale(albums) }))
        .filter((c) => c.markets > 0 && c.albums > 0),
    };
  }
}

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;

/**
 * The data side of the report, in memory bounded by {@link REPORT_LIMITS} whatever the number of
 * albums. It sees each album twice in the run's one pass: {@link listed} as its market listed it
 * (before rejects, dedupe and `--new-only` drop albums), {@link add} if it goes on to the
 * outputs. The markets and their overlap describe the lists; everything else what was
 * written. A plain object with plain functions: the stream taps only call these two.
 */
export class ReportAggregator {
  albums = 0;
  #listed = 0;
  /** The recent window, as YYYY-MM-DD (day-precision dates compare as strings). */
  readonly #recentFrom: string;
  readonly #recentTo: string;
  readonly #lastYear: number;
  readonly #recent = new Map<string, number>();
  readonly #years = new Map<number, YearCount>();
  #unknownYear = 0;
  #outsideYears = 0;
  #unparseable = 0;
  readonly #types = new Map<string, number>();
  readonly #tracks = new Uint32Array(REPORT_LIMITS.maxTracks + 1);
  #tracksMissing = 0;
  readonly #markets = new Map<string, { listed: number; written: number }>();
  readonly artists: TopArtists;
  readonly #overlap: MarketOverlap | undefined;

  /**
   * @param runDate the run's UTC date (YYYY-MM-DD): "recent" is counted back from it.
   * @param markets the run's markets: with two or more, the overlap between them is kept.
   */
  constructor(
    runDate: string,
    markets: readonly string[],
    limits: { artists?: number; overlapAlbums?: number } = {},
  ) {
    const runDay = Date.parse(`${runDate}T00:00:00Z`);
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    this.#recentFrom = iso(runDay - (REPORT_LIMITS.recentDays - 1) * DAY_MS);
    this.#recentTo = iso(runDay + FUTURE_DAYS * DAY_MS);
    this.#lastYear = Number(runDate.slice(0, 4)) + 5;
    this.artists = new TopArtists(limits.artists);
    // Listed in the run's order, empty markets too (a market with no albums is worth seeing).
    for (const market of markets) this.#markets.set(market, { listed: 0, written: 0 });
    this.#overlap =
      markets.length > 1 ? new MarketOverlap(limits.overlapAlbums, markets) : undefined;
  }

  #market(market: string): { listed: number; written: number } {
    let counts = this.#markets.get(market);
    if (counts === undefined) {
      counts = { listed: 0, written: 0 };
      this.#markets.set(market, counts);
    }
    return counts;
  }

  /**
   * One album as its market listed it, whether it goes on or not (before rejects, dedupe and
   * `--new-only`); anything malformed is counted, never thrown.
   */
  listed(album: unknown, market: string | undefined): void {
    this.#listed++;
    if (market === undefined) return;
    this.#market(market).listed++;
    const id = (album as { id?: unknown } | null)?.id;
    if (typeof id === 'string') this.#overlap?.add(id, market);
  }

  /**
   * One album that goes on to the outputs, as the source sent it; anything malformed is counted
   * as such, never thrown.
   */
  add(item: SourceItem): void {
    this.albums++;
    const album = (item.album && typeof item.album === 'object' ? item.album : {}) as Json;
    this.#date(album.release_date);
    const type = typeof album.album_type === 'string' ? album.album_type : '(missing)';
    if (this.#types.has(type) || this.#types.size < REPORT_LIMITS.albumTypes) {
      this.#types.set(type, (this.#types.get(type) ?? 0) + 1);
    } else {
      this.#types.set('(other)', (this.#types.get('(other)') ?? 0) + 1);
    }
    const tracks = album.total_tracks;
    if (Number.isInteger(tracks) && (tracks as number) >= 0) {
      const bin = Math.min(tracks as number, REPORT_LIMITS.maxTracks);
      this.#tracks[bin] = (this.#tracks[bin] as number) + 1;
    } else {
      this.#tracksMissing++;
    }
    if (Array.isArray(album.artists)) {
      for (const artist of album.artists as unknown[]) {
        const a = (artist && typeof artist === 'object' ? artist : {}) as Json;
        if (typeof a.id === 'string') {
          this.artists.add(a.id, typeof a.name === 'string' ? a.name : a.id);
        }
      }
    }
    if (item.market !== undefined) this.#market(item.market).written++;
  }

  #date(value: unknown): void {
    const match = typeof value === 'string' ? DATE.exec(value) : null;
    if (match === null) {
      this.#unparseable++;
      return;
    }
    const [, y = '', m, d] = match;
    const year = Number(y);
    if (year === 0) {
      this.#unknownYear++;
      return;
    }
    if (year < REPORT_LIMITS.firstYear || year > this.#lastYear) {
      this.#outsideYears++;
      return;
    }
    let counts = this.#years.get(year);
    if (counts === undefined) {
      counts = { year, day: 0, month: 0, year_only: 0 };
      this.#years.set(year, counts);
    }
    if (d !== undefined) counts.day++;
    else if (m !== undefined) counts.month++;
    else counts.year_only++;
    const day = value as string;
    if (d !== undefined && day >= this.#recentFrom && day <= this.#recentTo) {
      this.#recent.set(day, (this.#recent.get(day) ?? 0) + 1);
    }
  }

  snapshot(topArtists = 15): Aggregates {
    const tracks: Aggregates['tracks'] = [];
    this.#tracks.forEach((albums, n) => {
      if (albums > 0) {
        tracks.push({ tracks: n === REPORT_LIMITS.maxTracks ? `${n}+` : String(n), albums });
      }
    });
    return {
      albums: this.albums,
      listed: this.#listed,
      releases: {
        recent: [...this.#recent]
          .map(([date, albums]) => ({ date, albums }))
          .sort((a, b) => (a.date < b.date ? -1 : 1)),
        recentFrom: this.#recentFrom,
        recentTo: this.#recentTo,
        years: [...this.#years.values()].sort((a, b) => a.year - b.year),
        unknownYear: this.#unknownYear,
        outsideYears: this.#outsideYears,
        unparseable: this.#unparseable,
      },
      albumTypes: [...this.#types]
        .map(([type, albums]) => ({ type, albums }))
        .sort((a, b) => b.albums - a.albums || (a.type < b.type ? -1 : 1)),
      tracks,
      tracksMissing: this.#tracksMissing,
      artists: {
        top: this.artists.top(topArtists),
        distinct: this.artists.distinct,
        exact: this.artists.exact,
        appearances: this.artists.appearances,
      },
      markets: [...this.#markets].map(([market, counts]) => ({ market, ...counts })),
      overlap: this.#overlap?.summary() ?? null,
    };
  }
}
