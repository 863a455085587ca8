//! Run with `cargo run -p vireo-examples --bin custom_module`.

fn main() {
    let sayings = [
        "A module a day keeps the fork away.",
        "Trust only the certificate you were given.",
    ];
    match vireo_examples::custom_module::run_demo(&sayings) {
        Ok(got) => {
            println!("feature advertised in disco#info: {}", got.advertised);
            println!("fortune answered: {}", got.answer);
            println!("message pushed: {}", got.pushed.to_xml());
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    }
}
