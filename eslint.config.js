// ESLint flat config: typescript-eslint's recommended rules on every TypeScript file, plus the
// import boundaries that keep the pipeline one-directional (docs/architecture.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Stages of the pipeline, left to right; each may import only stages to its left (and domain).
 * `demo-ehr` stands at the far left like an external system: it imports only domain.
 */
const STAGES = ['demo-ehr', 'connectors', 'detection', 'store', 'sync', 'delivery', 'operations', 'app', 'api', 'cli'];

const boundaryRules = STAGES.map((stage, i) => ({
  files: [`src/${stage}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: STAGES.slice(i + 1).map((later) => ({
          group: [`**/${later}/*`, `../${later}/*`, `../../${later}/*`],
          message: `src/${stage} must not import from src/${later}: stages import only stages to their left (docs/architecture.md).`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', '.ehrsync/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', Buffer: 'readonly', fetch: 'readonly', structuredClone: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', queueMicrotask: 'readonly', setImmediate: 'readonly', performance: 'readonly', document: 'readonly', window: 'readonly', FormData: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-console': 'error',
    },
  },
  { files: ['src/domain/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: STAGES.map((s) => ({ group: [`../${s}/*`], message: 'src/domain is shared by all stages and imports none of them.' })) }] } },
  ...boundaryRules,
  { files: ['src/cli/**/*.ts', 'scripts/**', 'bench/**', 'bin/**', 'test/**'], rules: { 'no-console': 'off' } },
);
