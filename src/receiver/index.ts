/**
 * `ssf-broker/receiver`: a strict SSF 1.0 receiver SDK (CAEP 1.0, RISC 1.0) for resource servers and
 * agent runtimes. It verifies SETs (RFC 8417, SSF §4.1), takes them by push (RFC 8935) or poll
 * (RFC 8936), manages streams (SSF §8), records revocations, and enforces them on requests and on live
 * work. It depends on no broker server code.
 *
 * @module
 */
export {
  ReceiverError,
  isReceiverError,
  setErrorCodeFor,
  type ReceiverErrorCode,
  type ReceiverErrorOptions,
  type SetErrorCode,
} from './errors.js'
export {
  DELIVERY_METHODS,
  SSF_EVENT_TYPES,
  type ActorClaim,
  type StreamConfiguration,
  type StreamDelivery,
  type StreamRequest,
  type StreamStatus,
  type SubjectIdentifier,
  type TokenClaims,
  type TokenSource,
  type TransmitterMetadata,
  type VerifiedSet,
} from './types.js'
export {
  createReceiver,
  type Receiver,
  type ReceiverOptions,
  type ReceiveResult,
  type SetHandler,
} from './receiver.js'
export { wellKnownUrl } from './discovery.js'
export {
  DEFAULT_ALGORITHMS,
  STANDARD_SUBJECT_MEMBERS,
  SUPPORTED_ALGORITHMS,
  type SetAlgorithm,
} from './verify.js'
export type { VerificationStateCheck } from './verification-state.js'
export {
  MemoryReplayStore,
  type MemoryReplayStoreOptions,
  type ReplayStore,
} from './replay-store.js'
export { RedisReplayStore, type RedisReplayStoreOptions } from './redis-replay-store.js'
export {
  createHonoPushHandler,
  createNodePushHandler,
  createPushHandler,
  type PushAuthorization,
  type PushHandlerOptions,
} from './push-handler.js'
export {
  createPollClient,
  type PollClient,
  type PollClientOptions,
  type PollResult,
} from './poll-client.js'
export {
  createStreamClient,
  type EnsureStreamOptions,
  type StreamClient,
  type StreamClientOptions,
  type StreamStatusInfo,
  type TriggeredVerification,
} from './stream-client.js'
export {
  REVOKING_EVENT_TYPES,
  actorChain,
  isRevokingEvent,
  revocationsFromSet,
  targetsFromSubject,
  type Revocation,
  type RevocationKind,
  type RevocationRecord,
  type RevocationTarget,
} from './revocation.js'
export {
  BaseRevocationIndex,
  MemoryRevocationIndex,
  createRevocationIndex,
  type RevocationIndex,
  type RevocationIndexOptions,
} from './revocation-index.js'
export {
  RedisRevocationIndex,
  createRedisRevocationIndex,
  type RedisRevocationIndexOptions,
} from './redis-revocation-index.js'
export { LiveWork, TokenRevokedError, type LiveWatch } from './live-work.js'
export {
  revocationMiddleware,
  type RevocationEnv,
  type RevocationHookInfo,
  type RevocationMiddlewareOptions,
} from './middleware.js'
