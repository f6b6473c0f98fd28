/**
 * Errors Node's HTTP server answers itself, before any route runs (headers too large, malformed request
 * line or headers, request timeouts): answered with the same JSON error body as every other error, instead
 * of Node's default empty response.
 */
import type { Server } from 'node:http'
import type { Http2SecureServer, Http2Server } from 'node:http2'
import type { Duplex } from 'node:stream'

const ANSWERS: Record<string, [number, string, string, string]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    'Request Header Fields Too Large',
    'request_header_fields_too_large',
    'the request line or headers are too large',
  ],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [
    413,
    'Payload Too Large',
    'payload_too_large',
    'chunk extensions are too large',
  ],
  ERR_HTTP_REQUEST_TIMEOUT: [
    408,
    'Request Timeout',
    'request_timeout',
    'the request was not received in time',
  ],
  HPE_HEADERS_TIMEOUT: [
    408,
    'Request Timeout',
    'request_timeout',
    'the request headers were not received in time',
  ],
}
const BAD_REQUEST: [number, string, string, string] = [
  400,
  'Bad Request',
  'invalid_request',
  'malformed HTTP request',
]

function answer(err: NodeJS.ErrnoException, socket: Duplex): void {
  // Nothing can be written to a connection that is already gone or whose response has started.
  if (
    err.code === 'ECONNRESET' ||
    !socket.writable ||
    (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
  ) {
    socket.destroy()
    return
  }
  const [status, reason, code, description] = (err.code && ANSWERS[err.code]) || BAD_REQUEST
  const body = JSON.stringify({ error: code, error_description: description })
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  )
}

/** Makes `server` answer its own client errors with the broker's JSON error body. */
export function answerClientErrorsAsJson(server: Server | Http2Server | Http2SecureServer): void {
  ;(server as Server).on('clientError', answer)
}
