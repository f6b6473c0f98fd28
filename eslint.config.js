// ESLint (flat config): typescript-eslint's type-aware strict rules over the TypeScript sources, tests,
// benchmark, examples and scripts. Style is Prettier's business (.prettierrc.json), not ESLint's.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'packages/*/dist/', 'bench/results/', 'node_modules/'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // node:test's test() and describe() return promises the runner awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      // With noUncheckedIndexedAccess, `!` after a check the compiler cannot follow is the house idiom.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Style, not correctness: `(r) => server.close(r)` and friends.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // An async implementation of an async interface need not await anything.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/only-throw-error': 'error',
      // Template literals of numbers and booleans are everyday log and error text.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The receiver SDK is its own package: no broker server code, and hono / ioredis (optional peers)
    // for types only, so the SDK loads without them.
    files: ['src/receiver/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../*'], message: 'the receiver SDK imports no broker server code' },
          ],
          paths: [
            {
              name: 'hono',
              message: 'hono is an optional peer: import types only',
              allowTypeImports: true,
            },
            {
              name: 'ioredis',
              message: 'ioredis is an optional peer: import types only',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.{js,mjs}'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
)
