from agent_runner.cli import main

raise SystemExit(main())
