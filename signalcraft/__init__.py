"""The umbrella command (`signalcraft demo`, `signalcraft simulate`) and the embedded services it runs."""
