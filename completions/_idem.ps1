
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'idem' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'idem'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'idem' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command, or replay its recorded outcome when nothing it depends on changed')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Would this command be a hit? Exit 0 on hit, 1 on miss; runs nothing')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Say which dependencies changed since the last record of this task')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Hits, misses, time saved and cache size')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Recent records, one line each')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One record whole: dependencies, outputs, stdout and stderr')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Evict least-recently-used records and delete unreferenced blobs')
            [CompletionResult]::new('forget', 'forget', [CompletionResultType]::ParameterValue, 'Delete the records of one task, or of one execution key')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Delete every record and blob in the cache')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-hash every blob; drop records whose blobs are missing or corrupt')
            [CompletionResult]::new('tasks', 'tasks', [CompletionResultType]::ParameterValue, 'The tasks defined in idem.toml: names and descriptions')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'idem;run' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url-content', '--url-content', [CompletionResultType]::ParameterName, 'A URL whose body is always downloaded and hashed. Repeatable')
            [CompletionResult]::new('--url-header', '--url-header', [CompletionResultType]::ParameterName, 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable')
            [CompletionResult]::new('--url-timeout', '--url-timeout', [CompletionResultType]::ParameterName, 'Time limit for each URL check')
            [CompletionResult]::new('--url-offline', '--url-offline', [CompletionResultType]::ParameterName, 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--scope', '--scope', [CompletionResultType]::ParameterName, 'A name that separates otherwise identical tasks')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The task file [default: idem.toml at the workspace root]')
            [CompletionResult]::new('--pass-env', '--pass-env', [CompletionResultType]::ParameterName, 'With --strict-env, also pass this variable (not an input). Repeatable')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md')
            [CompletionResult]::new('--trace-ignore', '--trace-ignore', [CompletionResultType]::ParameterName, 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable')
            [CompletionResult]::new('--trace-net', '--trace-net', [CompletionResultType]::ParameterName, 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay')
            [CompletionResult]::new('--max-runs', '--max-runs', [CompletionResultType]::ParameterName, 'With --key: how many successful runs the key allows')
            [CompletionResult]::new('--key-reuse', '--key-reuse', [CompletionResultType]::ParameterName, 'With --key: refuse (deny) or allow reusing a key for another command line')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Do not replay records older than this (30s, 10m, 2h, 7d)')
            [CompletionResult]::new('--stale', '--stale', [CompletionResultType]::ParameterName, 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)')
            [CompletionResult]::new('--wait-timeout', '--wait-timeout', [CompletionResultType]::ParameterName, 'How long to wait for another idem running the same thing before running it too')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://')
            [CompletionResult]::new('--remote-read-only', '--remote-read-only', [CompletionResultType]::ParameterName, 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'Time limit for each remote cache operation')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr: auto (terminal only), always, never')
            [CompletionResult]::new('--clean-outputs', '--clean-outputs', [CompletionResultType]::ParameterName, 'On restore, make declared output directories exactly the recorded ones')
            [CompletionResult]::new('--no-ignore', '--no-ignore', [CompletionResultType]::ParameterName, 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Read stdin fully, make its hash an input, and feed the same bytes to the command')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run and re-record even when a matching record exists')
            [CompletionResult]::new('--cache-failures', '--cache-failures', [CompletionResultType]::ParameterName, 'Record non-zero exits too (by default only exit 0 is recorded)')
            [CompletionResult]::new('--strict-env', '--strict-env', [CompletionResultType]::ParameterName, 'Run the command with only the declared -e variables, PATH, HOME and --pass-env')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them')
            [CompletionResult]::new('--cache-only', '--cache-only', [CompletionResultType]::ParameterName, 'Replay a matching record, else exit 3 without running anything')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Do not wait for another idem running the same thing: exit 75 instead')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--background-refresh', '--background-refresh', [CompletionResultType]::ParameterName, 'Internal: refresh a stale record in the background (spawned by idem itself)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;status' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url-content', '--url-content', [CompletionResultType]::ParameterName, 'A URL whose body is always downloaded and hashed. Repeatable')
            [CompletionResult]::new('--url-header', '--url-header', [CompletionResultType]::ParameterName, 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable')
            [CompletionResult]::new('--url-timeout', '--url-timeout', [CompletionResultType]::ParameterName, 'Time limit for each URL check')
            [CompletionResult]::new('--url-offline', '--url-offline', [CompletionResultType]::ParameterName, 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--scope', '--scope', [CompletionResultType]::ParameterName, 'A name that separates otherwise identical tasks')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The task file [default: idem.toml at the workspace root]')
            [CompletionResult]::new('--pass-env', '--pass-env', [CompletionResultType]::ParameterName, 'With --strict-env, also pass this variable (not an input). Repeatable')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md')
            [CompletionResult]::new('--trace-ignore', '--trace-ignore', [CompletionResultType]::ParameterName, 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable')
            [CompletionResult]::new('--trace-net', '--trace-net', [CompletionResultType]::ParameterName, 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay')
            [CompletionResult]::new('--max-runs', '--max-runs', [CompletionResultType]::ParameterName, 'With --key: how many successful runs the key allows')
            [CompletionResult]::new('--key-reuse', '--key-reuse', [CompletionResultType]::ParameterName, 'With --key: refuse (deny) or allow reusing a key for another command line')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Do not replay records older than this (30s, 10m, 2h, 7d)')
            [CompletionResult]::new('--stale', '--stale', [CompletionResultType]::ParameterName, 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)')
            [CompletionResult]::new('--wait-timeout', '--wait-timeout', [CompletionResultType]::ParameterName, 'How long to wait for another idem running the same thing before running it too')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://')
            [CompletionResult]::new('--remote-read-only', '--remote-read-only', [CompletionResultType]::ParameterName, 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'Time limit for each remote cache operation')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr: auto (terminal only), always, never')
            [CompletionResult]::new('--clean-outputs', '--clean-outputs', [CompletionResultType]::ParameterName, 'On restore, make declared output directories exactly the recorded ones')
            [CompletionResult]::new('--no-ignore', '--no-ignore', [CompletionResultType]::ParameterName, 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Read stdin fully, make its hash an input, and feed the same bytes to the command')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run and re-record even when a matching record exists')
            [CompletionResult]::new('--cache-failures', '--cache-failures', [CompletionResultType]::ParameterName, 'Record non-zero exits too (by default only exit 0 is recorded)')
            [CompletionResult]::new('--strict-env', '--strict-env', [CompletionResultType]::ParameterName, 'Run the command with only the declared -e variables, PATH, HOME and --pass-env')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them')
            [CompletionResult]::new('--cache-only', '--cache-only', [CompletionResultType]::ParameterName, 'Replay a matching record, else exit 3 without running anything')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Do not wait for another idem running the same thing: exit 75 instead')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--background-refresh', '--background-refresh', [CompletionResultType]::ParameterName, 'Internal: refresh a stale record in the background (spawned by idem itself)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;explain' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url-content', '--url-content', [CompletionResultType]::ParameterName, 'A URL whose body is always downloaded and hashed. Repeatable')
            [CompletionResult]::new('--url-header', '--url-header', [CompletionResultType]::ParameterName, 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable')
            [CompletionResult]::new('--url-timeout', '--url-timeout', [CompletionResultType]::ParameterName, 'Time limit for each URL check')
            [CompletionResult]::new('--url-offline', '--url-offline', [CompletionResultType]::ParameterName, 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--scope', '--scope', [CompletionResultType]::ParameterName, 'A name that separates otherwise identical tasks')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The task file [default: idem.toml at the workspace root]')
            [CompletionResult]::new('--pass-env', '--pass-env', [CompletionResultType]::ParameterName, 'With --strict-env, also pass this variable (not an input). Repeatable')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md')
            [CompletionResult]::new('--trace-ignore', '--trace-ignore', [CompletionResultType]::ParameterName, 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable')
            [CompletionResult]::new('--trace-net', '--trace-net', [CompletionResultType]::ParameterName, 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay')
            [CompletionResult]::new('--max-runs', '--max-runs', [CompletionResultType]::ParameterName, 'With --key: how many successful runs the key allows')
            [CompletionResult]::new('--key-reuse', '--key-reuse', [CompletionResultType]::ParameterName, 'With --key: refuse (deny) or allow reusing a key for another command line')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Do not replay records older than this (30s, 10m, 2h, 7d)')
            [CompletionResult]::new('--stale', '--stale', [CompletionResultType]::ParameterName, 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)')
            [CompletionResult]::new('--wait-timeout', '--wait-timeout', [CompletionResultType]::ParameterName, 'How long to wait for another idem running the same thing before running it too')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://')
            [CompletionResult]::new('--remote-read-only', '--remote-read-only', [CompletionResultType]::ParameterName, 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'Time limit for each remote cache operation')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr: auto (terminal only), always, never')
            [CompletionResult]::new('--clean-outputs', '--clean-outputs', [CompletionResultType]::ParameterName, 'On restore, make declared output directories exactly the recorded ones')
            [CompletionResult]::new('--no-ignore', '--no-ignore', [CompletionResultType]::ParameterName, 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Read stdin fully, make its hash an input, and feed the same bytes to the command')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run and re-record even when a matching record exists')
            [CompletionResult]::new('--cache-failures', '--cache-failures', [CompletionResultType]::ParameterName, 'Record non-zero exits too (by default only exit 0 is recorded)')
            [CompletionResult]::new('--strict-env', '--strict-env', [CompletionResultType]::ParameterName, 'Run the command with only the declared -e variables, PATH, HOME and --pass-env')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them')
            [CompletionResult]::new('--cache-only', '--cache-only', [CompletionResultType]::ParameterName, 'Replay a matching record, else exit 3 without running anything')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Do not wait for another idem running the same thing: exit 75 instead')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--background-refresh', '--background-refresh', [CompletionResultType]::ParameterName, 'Internal: refresh a stale record in the background (spawned by idem itself)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (see docs/json.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;stats' {
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (see docs/json.md)')
            [CompletionResult]::new('--zero', '--zero', [CompletionResultType]::ParameterName, 'Reset the hit/miss counters')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;list' {
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--cmd', '--cmd', [CompletionResultType]::ParameterName, 'Only records whose command line contains this text')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only records made within this duration (2h, 7d)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'At most this many records')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many records')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (see docs/json.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;show' {
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--stdout', '--stdout', [CompletionResultType]::ParameterName, 'Print the recorded stdout bytes')
            [CompletionResult]::new('--stderr', '--stderr', [CompletionResultType]::ParameterName, 'Print the recorded stderr bytes')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (see docs/json.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;gc' {
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Evict least-recently-used records until the cache is under this size (5G, 500M)')
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'Evict records not used for this long (30d)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr: auto (terminal only), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;forget' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'An environment variable whose value (or absence) is an input. Repeatable')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable')
            [CompletionResult]::new('--url-content', '--url-content', [CompletionResultType]::ParameterName, 'A URL whose body is always downloaded and hashed. Repeatable')
            [CompletionResult]::new('--url-header', '--url-header', [CompletionResultType]::ParameterName, 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable')
            [CompletionResult]::new('--url-timeout', '--url-timeout', [CompletionResultType]::ParameterName, 'Time limit for each URL check')
            [CompletionResult]::new('--url-offline', '--url-offline', [CompletionResultType]::ParameterName, 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable')
            [CompletionResult]::new('--scope', '--scope', [CompletionResultType]::ParameterName, 'A name that separates otherwise identical tasks')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The task file [default: idem.toml at the workspace root]')
            [CompletionResult]::new('--pass-env', '--pass-env', [CompletionResultType]::ParameterName, 'With --strict-env, also pass this variable (not an input). Repeatable')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md')
            [CompletionResult]::new('--trace-ignore', '--trace-ignore', [CompletionResultType]::ParameterName, 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable')
            [CompletionResult]::new('--trace-net', '--trace-net', [CompletionResultType]::ParameterName, 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay')
            [CompletionResult]::new('--max-runs', '--max-runs', [CompletionResultType]::ParameterName, 'With --key: how many successful runs the key allows')
            [CompletionResult]::new('--key-reuse', '--key-reuse', [CompletionResultType]::ParameterName, 'With --key: refuse (deny) or allow reusing a key for another command line')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Do not replay records older than this (30s, 10m, 2h, 7d)')
            [CompletionResult]::new('--stale', '--stale', [CompletionResultType]::ParameterName, 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)')
            [CompletionResult]::new('--wait-timeout', '--wait-timeout', [CompletionResultType]::ParameterName, 'How long to wait for another idem running the same thing before running it too')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://')
            [CompletionResult]::new('--remote-read-only', '--remote-read-only', [CompletionResultType]::ParameterName, 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'Time limit for each remote cache operation')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr: auto (terminal only), always, never')
            [CompletionResult]::new('--clean-outputs', '--clean-outputs', [CompletionResultType]::ParameterName, 'On restore, make declared output directories exactly the recorded ones')
            [CompletionResult]::new('--no-ignore', '--no-ignore', [CompletionResultType]::ParameterName, 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Read stdin fully, make its hash an input, and feed the same bytes to the command')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run and re-record even when a matching record exists')
            [CompletionResult]::new('--cache-failures', '--cache-failures', [CompletionResultType]::ParameterName, 'Record non-zero exits too (by default only exit 0 is recorded)')
            [CompletionResult]::new('--strict-env', '--strict-env', [CompletionResultType]::ParameterName, 'Run the command with only the declared -e variables, PATH, HOME and --pass-env')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them')
            [CompletionResult]::new('--cache-only', '--cache-only', [CompletionResultType]::ParameterName, 'Replay a matching record, else exit 3 without running anything')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Do not wait for another idem running the same thing: exit 75 instead')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print one line about what idem did (hit, miss and why) on stderr')
            [CompletionResult]::new('--background-refresh', '--background-refresh', [CompletionResultType]::ParameterName, 'Internal: refresh a stale record in the background (spawned by idem itself)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;clear' {
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Delete without asking (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Delete without asking (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;verify' {
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr: auto (terminal only), always, never')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (see docs/json.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;tasks' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The task file [default: idem.toml at the workspace root]')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Workspace root, where idem.toml is looked for')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (see docs/json.md)')
            [CompletionResult]::new('--names', '--names', [CompletionResultType]::ParameterName, 'Print only the names, one per line (what shell completion calls)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'idem;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command, or replay its recorded outcome when nothing it depends on changed')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Would this command be a hit? Exit 0 on hit, 1 on miss; runs nothing')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Say which dependencies changed since the last record of this task')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Hits, misses, time saved and cache size')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Recent records, one line each')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One record whole: dependencies, outputs, stdout and stderr')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Evict least-recently-used records and delete unreferenced blobs')
            [CompletionResult]::new('forget', 'forget', [CompletionResultType]::ParameterValue, 'Delete the records of one task, or of one execution key')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Delete every record and blob in the cache')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-hash every blob; drop records whose blobs are missing or corrupt')
            [CompletionResult]::new('tasks', 'tasks', [CompletionResultType]::ParameterValue, 'The tasks defined in idem.toml: names and descriptions')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'idem;help;run' {
            break
        }
        'idem;help;status' {
            break
        }
        'idem;help;explain' {
            break
        }
        'idem;help;stats' {
            break
        }
        'idem;help;list' {
            break
        }
        'idem;help;show' {
            break
        }
        'idem;help;gc' {
            break
        }
        'idem;help;forget' {
            break
        }
        'idem;help;clear' {
            break
        }
        'idem;help;verify' {
            break
        }
        'idem;help;tasks' {
            break
        }
        'idem;help;completions' {
            break
        }
        'idem;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
