/**
 * One error class for everything the tool reports. `code` is stable (scripts may match on it);
 * the exit status is derived from it, so every layer only has to pick the right code.
 */

/** Process exit statuses; documented in the README's "Exit statuses" table. */
export const ExitStatus = {
  ok: 0,
  internal: 1,
  usage: 2,
  auth: 3,
  spotify: 4,
  sink: 5,
  data: 6,
  partial: 7,
  locked: 8,
  /** Not 9: Node itself exits 9 for a missing --env-file, before the tool runs. */
  outputExists: 10,
  sighup: 129,
  sigint: 130,
  sigterm: 143,
} as const;

const exitByCode = {
  ERR_USAGE: ExitStatus.usage,
  ERR_CONFIG: ExitStatus.usage,
  ERR_AUTH: ExitStatus.auth,
  ERR_SPOTIFY_HTTP: ExitStatus.spotify,
  ERR_SPOTIFY_FORBIDDEN: ExitStatus.spotify,
  ERR_RATE_LIMIT: ExitStatus.spotify,
  ERR_NETWORK: ExitStatus.spotify,
  ERR_BAD_PAGE: ExitStatus.spotify,
  ERR_BAD_RECORD: ExitStatus.data,
  ERR_SINK: ExitStatus.sink,
  ERR_S3: ExitStatus.sink,
  ERR_INTERRUPTED: ExitStatus.sigint,
  /** Another run holds the state's lease, or the state changed under this run. */
  ERR_LOCKED: ExitStatus.locked,
  /** A --new-only run over an output that exists (it would replace it with the new albums only). */
  ERR_OUTPUT_EXISTS: ExitStatus.outputExists,
  ERR_INTERNAL: ExitStatus.internal,
} as const;

export type ErrorCode = keyof typeof exitByCode;

/** Where an error happened: whatever of these is known is shown in `--debug` and JSON logs. */
export interface ErrorContext {
  url?: string;
  status?: number;
  offset?: number;
  bucket?: string;
  key?: string;
  path?: string;
  albumId?: string;
  field?: string;
  retryAfter?: number;
  signal?: string;
  market?: string;
  /** A publish that failed part-way: the outputs that are out, and those that are not. */
  published?: string[];
  notPublished?: string[];
}

export interface ErrorOptions {
  cause?: unknown;
  context?: ErrorContext;
  /** Transient failures (network, 5xx, 429, truncated body) are retried by the source. */
  retryable?: boolean;
}

export class SpotifyBatchError extends Error {
  override readonly name = 'SpotifyBatchError';
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.context = options.context ?? {};
    this.retryable = options.retryable ?? false;
  }

  get exitStatus(): number {
    if (this.code === 'ERR_INTERRUPTED' && this.context.signal === 'SIGTERM') {
      return ExitStatus.sigterm;
    }
    if (this.code === 'ERR_INTERRUPTED' && this.context.signal === 'SIGHUP') {
      return ExitStatus.sighup;
    }
    return exitByCode[this.code];
  }
}

/** Any thrown value as a SpotifyBatchError; unknown errors become ERR_INTERNAL (exit 1). */
export function toSpotifyBatchError(error: unknown): SpotifyBatchError {
  if (error instanceof SpotifyBatchError) return error;
  // An AbortSignal's reason may be wrapped by streams as an AbortError whose cause is ours.
  if (error instanceof Error && error.cause instanceof SpotifyBatchError) return error.cause;
  const message = error instanceof Error ? error.message : String(error);
  return new SpotifyBatchError('ERR_INTERNAL', `internal error: ${message}`, { cause: error });
}

export function usageError(message: string): SpotifyBatchError {
  return new SpotifyBatchError('ERR_USAGE', message);
}

/** Whatever aborted a run, as an ERR_INTERRUPTED error (signals and failures bring their own). */
export function abortReason(reason: unknown): SpotifyBatchError {
  if (reason instanceof SpotifyBatchError) return reason;
  const detail = reason instanceof Error ? reason.message : String(reason);
  return new SpotifyBatchError('ERR_INTERRUPTED', `run aborted (${detail})`, { cause: reason });
}

/** Disk and permission failures that name the path and end the run with the sink status (5). */
export function fileError(cause: unknown, path: string, doing: string): SpotifyBatchError {
  const err = cause as NodeJS.ErrnoException;
  const why =
    {
      ENOSPC: 'no space left on the device',
      EDQUOT: 'disk quota exceeded',
      EACCES: 'permission denied',
      EPERM: 'operation not permitted',
      EROFS: 'read-only file system',
      EISDIR: 'is a directory',
      ENOTDIR: 'a parent is not a directory',
      ENOENT: 'no such directory',
    }[err.code ?? ''] ?? err.message;
  return new SpotifyBatchError('ERR_SINK', `cannot ${doing} ${path}: ${why}`, {
    cause,
    context: { path },
  });
}

/** A write whose reader went away (`| head`): the run ends cleanly, not with an error. */
export function isBrokenPipe(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'EPIPE';
}
