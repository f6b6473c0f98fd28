/**
 * Live work bound to a token: open streaming responses, in-flight tool calls, an agent's session. Each
 * watch holds an `AbortSignal` that aborts the moment a revocation matching the token is recorded (see
 * revocation.ts for the matching rules), so the runtime stops the work at once instead of at the next
 * request. Watches are indexed by the token's keys, so a revocation only looks at the watches it can hit.
 *
 * @module
 */
import { ReceiverError } from './errors.js'
import { refuses, tokenKeys, targetKey, type RevocationRecord } from './revocation.js'
import type { TokenClaims } from './types.js'

/** A watch on a token's live work. */
export interface LiveWatch {
  /** Aborts with a `ReceiverError` (`ERR_TOKEN_REVOKED`, `revocation` set) when the token is revoked. */
  readonly signal: AbortSignal
  /** Stops watching (call when the work ends). Idempotent. */
  release(): void
}

/** The abort reason of a revoked watch. */
export class TokenRevokedError extends ReceiverError {
  readonly revocation: RevocationRecord
  constructor(revocation: RevocationRecord) {
    super(
      'ERR_TOKEN_REVOKED',
      `the token was revoked${revocation.eventType ? ` (${revocation.eventType.split('/').pop()})` : ''}`,
    )
    this.revocation = revocation
  }
}

interface Watch {
  keys: Set<string>
  iat: unknown
  controller: AbortController
}

/** The registry of watches; one per revocation index. */
export class LiveWork {
  readonly #byKey = new Map<string, Set<Watch>>()

  /** Number of active watches. */
  get size(): number {
    const all = new Set<Watch>()
    for (const set of this.#byKey.values()) for (const w of set) all.add(w)
    return all.size
  }

  watch(claims: TokenClaims): LiveWatch {
    const watch: Watch = {
      keys: tokenKeys(claims),
      iat: claims.iat,
      controller: new AbortController(),
    }
    for (const key of watch.keys) {
      let set = this.#byKey.get(key)
      if (!set) this.#byKey.set(key, (set = new Set()))
      set.add(watch)
    }
    let released = false
    return {
      signal: watch.controller.signal,
      release: () => {
        if (released) return
        released = true
        this.#remove(watch)
      },
    }
  }

  /** Aborts every watch the revocation refuses; returns how many. */
  notify(record: RevocationRecord): number {
    const anchor = record.targets[0]
    if (!anchor) return 0
    // Any target of the record must be among a matching watch's keys: look up by the first one.
    const candidates = this.#byKey.get(targetKey(anchor))
    if (!candidates) return 0
    let aborted = 0
    for (const watch of [...candidates]) {
      if (!refuses(record, watch.keys, watch.iat)) continue
      this.#remove(watch)
      watch.controller.abort(new TokenRevokedError(record))
      aborted++
    }
    return aborted
  }

  #remove(watch: Watch): void {
    for (const key of watch.keys) {
      const set = this.#byKey.get(key)
      if (!set) continue
      set.delete(watch)
      if (set.size === 0) this.#byKey.delete(key)
    }
  }
}
