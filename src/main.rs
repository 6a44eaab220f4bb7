fn main() {
    std::process::exit(orchestrator::run(std::env::args_os()));
}
