import { SpotifyBatchError, usageError } from '../core/errors.ts';
import { normalizeS3Options, type S3Options } from '../core/options/s3.ts';
import { parseDestination } from '../core/options.ts';
import { shellWord } from '../core/shell.ts';
import { Destinations } from '../sinks/open.ts';
import {
  describeHolder,
  type HolderStatus,
  here,
  holderStatus,
  type LeaseHolder,
  prefixed,
  readLease,
  whyHeld,
} from './state.ts';

/** What `spotify-batch unlock` found and did. */
export interface UnlockReport {
  /** The lease's location (`<state>.lease`). */
  location: string;
  /** Whether a lease was there and is now removed. */
  removed: boolean;
  /** What the removed lease said of its run; null when there was none. */
  holder: LeaseHolder | null;
  /**
   * Why it could go: its process is gone (this host), it had expired, or `force` (its run may
   * still be going, or nothing here can tell). Null when there was no lease.
   */
  reason: 'holder-gone' | 'expired' | 'forced' | null;
  /** The lease's age in seconds, when known. */
  ageSeconds: number | null;
}

/**
 * Releases the lease beside a state that a run left behind (killed by SIGKILL or the OOM killer,
 * a pod that is gone): a lease whose holder is dead on this host, or has expired; any lease with
 * `force`. A live holder, or one nothing here can check (another host), without `force` is
 * refused (ERR_LOCKED, exit 8). The removal is conditional on the version read, so a lease a run
 * took meanwhile stays. `s3` defaults to the S3 settings `env` gives (AWS_ENDPOINT_URL_S3, …).
 */
export async function unlock(
  stateLocation: string,
  {
    force = false,
    s3,
    env = process.env,
  }: { force?: boolean; s3?: S3Options; env?: NodeJS.ProcessEnv } = {},
): Promise<UnlockReport> {
  if (stateLocation.trim() === '') {
    throw usageError('option --state is empty: give the file path or s3:// key of the state');
  }
  if (parseDestination(stateLocation, '--state').kind === 'stdout') {
    throw usageError('option --state needs a file path or s3:// key, got -');
  }
  const location = `${stateLocation}.lease`;
  const destinations = new Destinations(s3 ?? normalizeS3Options({}, env), env, process.stdout);
  try {
    const lease = await readLease(destinations, stateLocation).catch((error: unknown) => {
      throw prefixed(error, stateLocation);
    });
    if (lease === undefined) {
      return { location, removed: false, holder: null, reason: null, ageSeconds: null };
    }
    const now = Date.now();
    const at = here();
    const status: HolderStatus = holderStatus(lease.holder, now - lease.since, at);
    const held = status === 'running' || status === 'unverifiable';
    if (held && !force) {
      throw new SpotifyBatchError(
        'ERR_LOCKED',
        `option --state: the lease ${location} is held by ${describeHolder(lease.holder)}, ${whyHeld(status, lease, at)}; nothing was removed. Once that run is surely gone (two runs at once would write the same state): spotify-batch unlock --state ${shellWord(stateLocation)} --force`,
        { context: { path: location } },
      );
    }
    const removed = await destinations.deleteIf(location, lease.version).catch((error: unknown) => {
      throw prefixed(error, stateLocation);
    });
    if (!removed) {
      throw new SpotifyBatchError(
        'ERR_LOCKED',
        `option --state: the lease ${location} changed while it was being removed (a run took it, or released it); nothing was removed: look again with the same command`,
        { context: { path: location } },
      );
    }
    return {
      location,
      removed: true,
      holder: lease.holder,
      reason: held ? 'forced' : status === 'gone' ? 'holder-gone' : 'expired',
      ageSeconds: Number.isNaN(lease.since) ? null : Math.max(0, (now - lease.since) / 1000),
    };
  } finally {
    await destinations.close();
  }
}
