/**
 * Characters refused in text a request supplies: NUL and lone UTF-16 surrogates anywhere (they are not
 * text, and break the JSON, logs and tokens built from them), and in the members that are shown to people
 * or compared as identifiers also the Unicode bidirectional controls (U+202A–202E embeddings and
 * overrides, U+2066–2069 isolates, U+200E/U+200F marks, U+061C), which can make a value display as
 * something it is not. Identifiers also refuse the other C0/C1 control characters.
 */

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/

/** NUL or a lone surrogate: refused in every string of every request body. */
export function notText(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain NUL characters'
  if (LONE_SURROGATE.test(value)) return 'must not contain unpaired UTF-16 surrogates'
  return undefined
}

/** Problem with a display or descriptive text member (description, reason, state, names), if any. */
export function unsafeText(value: string): string | undefined {
  return (
    notText(value) ??
    (BIDI_CONTROL.test(value)
      ? 'must not contain Unicode bidirectional control characters (U+202A–202E, U+2066–2069, U+200E, U+200F, U+061C)'
      : undefined)
  )
}

/** Problem with an identifier (subject identifiers, audience, txn, ids), if any. */
export function unsafeIdentifier(value: string): string | undefined {
  return (
    unsafeText(value) ?? (CONTROL.test(value) ? 'must not contain control characters' : undefined)
  )
}
