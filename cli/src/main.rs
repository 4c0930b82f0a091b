use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = winback_cli::Cli::parse();
    if let Err(e) = winback_cli::run(cli).await {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
